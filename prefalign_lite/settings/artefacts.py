"""What is public about the real artefacts the configs name, written down once for their local
stand-ins (:mod:`.standin_build`): chat templates, special tokens and their settings, generation
defaults, the config fields that change behaviour (vocabulary size, tied embeddings, pad token), and
the dataset's split names. Everything except the weights and the full vocabulary.

The chat templates are the kit's own Jinja, written to render exactly what the published templates
render for the conversations the kit builds (system, user and assistant turns, no tools); the tests
hold them to the published renderings.
"""
from __future__ import annotations

from dataclasses import dataclass, field

QWEN25_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

# Qwen2.5-Instruct: ChatML with a default system turn when the conversation has none.
QWEN25_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' -}}{%- set start = 1 -%}"
    "{%- else -%}{{- '<|im_start|>system\\n" + QWEN25_SYSTEM + "<|im_end|>\\n' -}}{%- set start = 0 -%}{%- endif -%}"
    "{%- for m in messages[start:] -%}"
    "{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}")

# alignment-handbook's Zephyr template: "<|role|>\n" + content + eos + "\n" per turn, no BOS anywhere
# (the tokenizer is the one that would add it).
ZEPHYR_TEMPLATE = (
    "{%- for m in messages -%}{%- if m['role'] in ['user', 'system', 'assistant'] -%}"
    "{{- '<|' + m['role'] + '|>\\n' + m['content'] + eos_token + '\\n' -}}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- endif -%}")

# Llama-3.1-Instruct: BOS, then always a system header with the knowledge and today's dates, every
# turn's content trimmed.
LLAMA31_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- if date_string is not defined -%}{%- set date_string = '26 Jul 2024' -%}{%- endif -%}"
    "{%- if messages[0]['role'] == 'system' -%}{%- set system_message = messages[0]['content'] | trim -%}"
    "{%- set start = 1 -%}{%- else -%}{%- set system_message = '' -%}{%- set start = 0 -%}{%- endif -%}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\nCutting Knowledge Date: December 2023\\nToday Date: '"
    " + date_string + '\\n\\n' + system_message + '<|eot_id|>' -}}"
    "{%- for m in messages[start:] -%}"
    "{{- '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + m['content'] | trim + '<|eot_id|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}")

# Qwen3 (hybrid thinking): no default system turn; the final assistant turn after the last user turn
# carries a think block (empty when it has no reasoning) and loses its leading newlines.
QWEN3_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- set ns = namespace(last_user=messages | length - 1) -%}"
    "{%- for m in messages -%}{%- if m['role'] == 'user' -%}{%- set ns.last_user = loop.index0 -%}{%- endif -%}"
    "{%- endfor -%}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'user' or (m['role'] == 'system' and not loop.first) -%}"
    "{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' -}}"
    "{%- elif m['role'] == 'assistant' -%}"
    "{%- set content = m['content'] -%}{%- set reasoning = '' -%}"
    "{%- if '</think>' in content -%}"
    "{%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') -%}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') -%}{%- endif -%}"
    "{%- if loop.index0 > ns.last_user and (loop.last or reasoning) -%}"
    "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n')"
    " + '<|im_end|>\\n' -}}"
    "{%- else -%}{{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}{{- '<think>\\n\\n</think>\\n\\n' -}}"
    "{%- endif -%}{%- endif -%}")

# Qwen2.5's added tokens, in id order after the regular vocabulary (special ones first).
QWEN25_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                  "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
QWEN25_PLAIN_ADDED = ["<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                      "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]
QWEN3_PLAIN_ADDED = QWEN25_PLAIN_ADDED + ["<tool_response>", "</tool_response>", "<think>", "</think>"]
QWEN_ADDITIONAL_SPECIAL = QWEN25_SPECIAL[1:]
LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                  "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
                  "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
LLAMA_SP_SPECIAL = ["<unk>", "<s>", "</s>"]


@dataclass(frozen=True)
class ModelArtefact:
    """One real model as its stand-in reproduces it (ids of special tokens are the stand-in's own:
    its vocabulary is small, the embedding keeps the real ``vocab_size``)."""

    hub_id: str
    standin: str                  # the name after "standin:"
    kind: str                     # "policy" or "reward_model"
    architecture: str             # the transformers class saved in config.json
    tokenizer: str                # "qwen2", "qwen3", "llama-sp" (Mistral/Llama-2 sentencepiece BPE), "llama3"
    vocab_size: int               # config.vocab_size (the embedding's rows)
    tie_word_embeddings: bool
    chat_template: str
    bos_token: str | None
    eos_token: str
    pad_token: str | None         # the tokenizer's pad token (None: it has none)
    config_pad: bool              # whether config.json holds a pad_token_id
    config_eos: tuple[str, ...]   # config.json's eos_token_id (one or a list)
    tokenizer_config: dict = field(default_factory=dict)   # the published tokenizer_config.json keys
    generation_config: dict | None = None                   # token names stand for their ids
    config: dict = field(default_factory=dict)              # other published config.json values kept
    note: str = ""


# the tokenizer_config.json keys that Qwen2.5's and Qwen3's tokenizers publish alike
QWEN_TOKENIZER_CONFIG = {"tokenizer_class": "Qwen2Tokenizer", "add_prefix_space": False, "errors": "replace",
                         "clean_up_tokenization_spaces": False, "split_special_tokens": False, "unk_token": None,
                         "additional_special_tokens": QWEN_ADDITIONAL_SPECIAL}

QWEN25_05B = ModelArtefact(
    hub_id="Qwen/Qwen2.5-0.5B-Instruct", standin="qwen2.5-0.5b-instruct", kind="policy",
    architecture="Qwen2ForCausalLM", tokenizer="qwen2", vocab_size=151936, tie_word_embeddings=True,
    chat_template=QWEN25_TEMPLATE, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
    config_pad=False, config_eos=("<|im_end|>",),
    tokenizer_config={**QWEN_TOKENIZER_CONFIG, "model_max_length": 131072},
    generation_config={"bos_token_id": "<|endoftext|>", "pad_token_id": "<|endoftext|>", "do_sample": True,
                       "eos_token_id": ["<|im_end|>", "<|endoftext|>"], "repetition_penalty": 1.1,
                       "temperature": 0.7, "top_p": 0.8, "top_k": 20},
    config={"bos_token_id": "<|endoftext|>", "max_position_embeddings": 32768, "rope_theta": 1000000.0,
            "sliding_window": 32768, "use_sliding_window": False, "max_window_layers": 21, "rms_norm_eps": 1e-6},
    note="config.vocab_size 151,936 while the tokenizer holds far fewer ids (Qwen pads its embedding too)")

ZEPHYR_7B_SFT = ModelArtefact(
    hub_id="alignment-handbook/zephyr-7b-sft-full", standin="zephyr-7b-sft-full", kind="policy",
    architecture="MistralForCausalLM", tokenizer="llama-sp", vocab_size=32000, tie_word_embeddings=False,
    chat_template=ZEPHYR_TEMPLATE, bos_token="<s>", eos_token="</s>", pad_token="</s>",
    config_pad=False, config_eos=("</s>",),
    tokenizer_config={"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
                      "legacy": True, "unk_token": "<unk>", "model_max_length": 2048,
                      "clean_up_tokenization_spaces": False, "spaces_between_special_tokens": False,
                      "sp_model_kwargs": {}, "use_default_system_prompt": False, "additional_special_tokens": []},
    generation_config={"bos_token_id": "<s>", "eos_token_id": "</s>"},
    config={"bos_token_id": "<s>", "max_position_embeddings": 32768, "rope_theta": 10000.0, "sliding_window": 4096,
            "rms_norm_eps": 1e-5},
    note="a sentencepiece-style BPE with byte fallback; BOS only from add_bos_token, never from the template")

SKYWORK_LLAMA_8B = ModelArtefact(
    hub_id="Skywork/Skywork-Reward-V2-Llama-3.1-8B", standin="skywork-reward-v2-llama-3.1-8b", kind="reward_model",
    architecture="LlamaForSequenceClassification", tokenizer="llama3", vocab_size=128256, tie_word_embeddings=False,
    chat_template=LLAMA31_TEMPLATE, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", pad_token=None,
    config_pad=False, config_eos=("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"),
    tokenizer_config={"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 131072,
                      "clean_up_tokenization_spaces": True},
    config={"bos_token_id": "<|begin_of_text|>", "max_position_embeddings": 131072, "rope_theta": 500000.0,
            "rms_norm_eps": 1e-5, "num_labels": 1},
    note="Llama-3.1-Instruct's tokenizer and template; no pad token in the tokenizer, none in config.json")

SKYWORK_QWEN3_06B = ModelArtefact(
    hub_id="Skywork/Skywork-Reward-V2-Qwen3-0.6B", standin="skywork-reward-v2-qwen3-0.6b", kind="reward_model",
    architecture="Qwen3ForSequenceClassification", tokenizer="qwen3", vocab_size=151936, tie_word_embeddings=True,
    chat_template=QWEN3_TEMPLATE, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
    config_pad=True, config_eos=("<|im_end|>",),
    tokenizer_config={**QWEN_TOKENIZER_CONFIG, "add_bos_token": False, "model_max_length": 40960},
    config={"bos_token_id": "<|endoftext|>", "max_position_embeddings": 40960, "rope_theta": 1000000.0,
            "rms_norm_eps": 1e-6, "num_labels": 1},
    note="Qwen3's template inserts an empty think block before the scored answer")

MODELS = {a.standin: a for a in (QWEN25_05B, ZEPHYR_7B_SFT, SKYWORK_LLAMA_8B, SKYWORK_QWEN3_06B)}

# HuggingFaceH4/ultrafeedback_binarized: its splits (rows), columns in order.
ULTRAFEEDBACK_ID = "HuggingFaceH4/ultrafeedback_binarized"
ULTRAFEEDBACK_SPLITS = {"train_prefs": 61135, "train_sft": 61135, "test_prefs": 2000, "test_sft": 1000,
                        "train_gen": 61135, "test_gen": 1000}
ULTRAFEEDBACK_COLUMNS = ("prompt", "prompt_id", "chosen", "rejected", "messages", "score_chosen", "score_rejected")
# The splits a preference run reads: (training pairs, held-out evaluation prompts).
KNOWN_SPLITS = {ULTRAFEEDBACK_ID: ("train_prefs", "test_prefs")}

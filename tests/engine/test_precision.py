"""Which precision a forward pass runs in, decided for the device and the model, tested on a CPU with
a fake CUDA card: a T4 (no bf16) gets float16, and the embedded world's float32 model is never
autocast, so a Colab GPU runtime runs its notebooks as the CPUs of the committed run did."""
import contextlib

import pytest
import torch

from prefalign_lite import settings
from prefalign_lite.engine import models
from prefalign_lite.world import tiny


@pytest.fixture(params=[True, False], ids=["bf16 card", "T4 (no bf16)"])
def card(request, monkeypatch):
    monkeypatch.setattr(models, "card_has_bf16", lambda: request.param)
    return request.param


def test_the_compute_dtype_follows_what_the_card_supports(card):
    assert models.bf16_supported("cuda") is card
    assert models.default_dtype("cuda") == (torch.bfloat16 if card else torch.float16)
    assert models.default_dtype("cpu") == torch.float32 and models.bf16_supported("cpu")


def test_a_float32_model_is_never_autocast_and_a_half_precision_one_is(card):
    fp32 = tiny.build_model(tiny.TinyConfig(), tiny.build_tokenizer())
    half = torch.nn.Linear(4, 4).to(torch.bfloat16)
    assert not models.low_precision(fp32) and models.low_precision(half)
    assert isinstance(models.autocast_for("cuda", model=fp32), contextlib.nullcontext)
    assert isinstance(models.autocast_for("cpu", model=half), contextlib.nullcontext)
    with pytest.warns(UserWarning) if not torch.cuda.is_available() else contextlib.nullcontext():
        cast = models.autocast_for("cuda", model=half)
    assert isinstance(cast, torch.autocast) and cast.fast_dtype == (torch.bfloat16 if card else torch.float16)


def test_the_embedded_world_asks_for_full_precision_and_a_real_dataset_for_qlora():
    assert settings.EmbeddedSetting().low_precision_on_gpu is False
    assert settings.Setting.low_precision_on_gpu is True   # DatasetSetting inherits it

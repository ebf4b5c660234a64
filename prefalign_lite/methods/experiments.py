"""The one registry of the replication's experiments: each stage's name (its notebook and its
folder in a run), the keys of the metrics it saves and the labels of the variants it runs. The
notebooks write their metrics with these names and the report and the fairness checks read them
back, so a name is written once.
"""
from __future__ import annotations


def versus(a: str, b: str) -> str:
    """The label of a head-to-head of ``a`` against ``b``."""
    return f"{a} vs {b}"


class Baselines:
    stage = "11_dpo_baselines"
    sft = "sft"                    # the SFT model's measurements (fairness inputs)
    seed_dpo = "seed_dpo"          # DPO on the 3.3% gold seed
    all_gold = "all_gold_dpo"      # DPO on every gold label of SPA's design


class Spa:
    stage = "13_spa"
    run = "spa"                    # the 3.3% seed, three rounds: {"rounds": [...], "gate": {...}}
    by_fraction = "by_fraction"    # seed share (3 decimals) -> a run of two rounds
    paper_fraction = f"{2 / 60:.3f}"


class SpaJudges:
    stage = "14_spa_judges_and_ablations"
    variants = "variants"          # variant label -> run
    table7 = "table7"              # judge label -> round-2 record
    SPA = "SPA"
    SR = "SR without DND"
    DE = "DE only"
    REWARD_MODEL = "iterative DPO, reward model"
    LLM = "iterative DPO, LLM-as-judge"
    RANDOM = "iterative DPO, random labels"   # the control of self-training without information
    AFTER_ROUND_1 = "after round 1"
    JUDGE_INIT = "Eq. 7 with the SFT model"
    JUDGE_PREVIOUS = "Eq. 7 with the previous model"
    JUDGE_REWARD_MODEL = "reward model"
    JUDGE_NO_REFERENCE = "no reference"


class Sera:
    stage = "15_sera"
    table1 = "table1"              # method label -> records by round
    reward_r2 = "reward_r2"        # method label -> R^2 with length and with gold
    flipped = "flipped"            # flip rate -> method label -> records by round
    DPO = "DPO"
    ITERATIVE = "iterative DPO"
    SERA = "SeRA"
    BEST = "best-SeRA"


class SrDpo:
    stage = "16_sr_dpo"
    single_pass = "single_pass"    # method label -> record
    head_to_head = "head_to_head"  # versus(a, b) -> win / tie / lose
    DPO = "DPO"
    IPO = "IPO"
    SR_DPO = "Sr-DPO"
    SR_IPO = "Sr-IPO"
    NAIVE = "Sr-DPO, Δ_naive"
    PAIRS = ((SR_DPO, DPO), (SR_IPO, IPO), (SR_DPO, NAIVE))


class Dro:
    stage = "17_dro_dpo"
    in_loop = "dro_spa"            # SPA with the round-level worst case: a run
    by_flip = "by_flip"            # flip rate -> method label -> record
    DPO = "DPO"
    PER_BATCH = "DRO-DPO per batch"


# Keys that several stages share, and the labels of the controls and diagnostics (docs/protocol.md).
class Controls:
    sharpening = "sft_at_sampler_temperature"   # Baselines: the SFT model sampled at the sampler's temperature
    random_run = "random_labels"                # Spa: iterative DPO with random labels from the 3.3% seed
    random_by_fraction = "random_labels_by_fraction"
    sera_random = "SeRA, random labels"         # Sera: SeRA's loop with a coin for the implicit reward


class Checks:
    label_sensitivity = "label_sensitivity"     # Baselines: DPO on on-policy pairs, gold against random labels
    offline_agreement = "offline_label_agreement"
    sr_precondition = "sr_dpo_precondition"
    agreement = "judge_agreement"               # SpaJudges: each judge's labels against Eq. 7's on the same pairs
    refinement = "refinement_diagnostics"       # SrDpo: Delta_pi against beta h and the gold gap, per method
    weights = "dro_effective_weights"           # Dro: the worst case's gradient weight relative to DPO's

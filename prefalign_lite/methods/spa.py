"""SPA, Algorithm 1 (Kim et al., "Spread Preference Annotation"), on a Session.

pi_0 = DPO on the gold seed from pi_init (3 epochs). For t = 1..T on fresh prompts X_t:
sample two responses from pi_{t-1}; judge them with Eq. 7-8 (implicit reward of pi_{t-1} against
the judge reference, pi_init by default); train pi_t from pi_{t-1} with reference pi_{t-1} on the
refined loss Eq. 10 with de-coupled noise detection (Eq. 11-12, lambda_t = 1/2, 1/4, 1/8).

The ablations of SPA Tables 2, 6 and 7 and the thesis' robust variant are switches of
``SpaConfig``; variants can share one seed iterate (``seed_iterate``) and live side by side as
adapters of one session.

Before round 1 trains, the **gate** is measured (:class:`SpaRun` keeps it beside the rounds): SPA
only makes sense if the seed model already beats the SFT model (its bootstrap interval above 0.5)
and its Eq. 7 judge labels its own samples better than a coin would (accuracy on non-tied pairs
above 0.6). Where the gate fails, the report marks the claims that rest on it "not testable".
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field

import torch

from .. import objectives as O
from ..core.pairs import label_quality, ordered
from ..engine import losses
from . import dro, judges
from .pairs import SampledPairs, sample_pairs as sample_two
from .session import SFT, Session, plain

log = logging.getLogger(__name__)
JUDGES = ("implicit", "reward_model", "llm", "random")
LOSSES = ("refined", "dpo", "dro")
GATE_ACCURACY = 0.6


@dataclass(frozen=True)
class SpaConfig:
    """SPA's recipe (SPA §5.1) and the switches of its ablations (Tables 2, 6 and 7) and of the
    thesis' robust variant."""

    beta: float = 0.1                # KL strength of DPO, of Eq. 7's implicit judge and of Eq. 10
    alpha: float = 0.1               # Eq. 10: label smoothing applied to a pair flagged as noise
    k: float = 0.1                   # Eq. 9: K, the share of each window's least-confident pairs flagged as noise
    lams: tuple[float, ...] = (0.5, 0.25, 0.125)   # Eq. 12: lambda_t of rounds 1, 2, 3 (the last repeats after)
    warmup_fraction: float = 0.2     # refinement (and the DRO worst case) off for this share of a round's steps
    seed_epochs: int = 3             # epochs of DPO on the gold seed that make pi_0
    loss: str = "refined"            # Eq. 10 ("refined"), plain DPO = data expansion only ("dpo"), the thesis' worst case ("dro")
    decoupled: bool = True           # ablation: False = flag with the policy itself (Eq. 9)
    judge: str = "implicit"          # Eq. 7-8, a reward model ("reward_model"), the SFT model asked ("llm"),
                                     # a fair coin ("random": the control of self-training without information)
    judge_reference: str = "init"    # implicit judge against: "init" (SPA), "previous" (pi_{t-2}), "none"
    dro_epsilon: float = 0.05        # thesis: Wasserstein radius in confidence units (about K = 10% of pairs moved)
    dro_pieces: int = 8              # thesis: tangents of the -log sigma envelope in the linear program
    dro_solves: int = 4              # worst case re-solved over the whole round this many times

    def __post_init__(self):
        if self.judge not in JUDGES:
            raise ValueError(f"judge must be one of {JUDGES}, got {self.judge!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        judge_reference(1, self.judge_reference)

    def lam(self, t: int) -> float:
        return self.lams[min(t - 1, len(self.lams) - 1)]


class _NoReference:
    """The implicit judge without a reference model: its log-ratio is the policy's log-prob alone."""

    def __repr__(self) -> str:
        return "NO_REFERENCE"


NO_REFERENCE = _NoReference()


def judge_reference(t: int, how: str):
    """The iteration whose model is the reference of the implicit judge at iteration ``t``
    (:data:`SFT` for the SFT model), or :data:`NO_REFERENCE`."""
    if how == "init":
        return SFT
    if how == "previous":
        return t - 2 if t >= 2 else SFT
    if how == "none":
        return NO_REFERENCE
    raise ValueError(f"judge_reference must be 'init', 'previous' or 'none', got {how!r}")


def sample_pairs(session: Session, t: int, prompts: list[str], names: dict, stage: str) -> SampledPairs:
    """Line 2 of Algorithm 1: two answers of pi_{t-1} per prompt, from round ``t``'s draw of the
    "pair samples" stream (identical pairs dropped)."""
    return sample_two(session, names[t - 1], prompts, session.seed_of("pair samples", t), stage)


def implicit_first_wins(session: Session, rows: list, t: int, cfg: SpaConfig, names: dict) -> list[bool]:
    """SPA Eq. 7-8: ``p = sigma(beta [log pi_{t-1}/ref (y1) - log pi_{t-1}/ref (y2)]) > 0.5``."""
    pi_1, pi_2 = session.logps(names[t - 1], rows)
    ref = judge_reference(t, cfg.judge_reference)
    if ref is NO_REFERENCE:
        init_1, init_2 = torch.zeros_like(pi_1), torch.zeros_like(pi_2)
    else:
        init_1, init_2 = session.logps(ref if ref is SFT else names[ref], rows)
    return O.spa_label(O.spa_preference(pi_1, pi_2, init_1, init_2, cfg.beta)).tolist()


def first_wins(session: Session, sampled: SampledPairs, t: int, cfg: SpaConfig, names: dict,
               reward_judge=None) -> list[bool]:
    """The configured judge's verdict on each pair: ``True`` where the first answer is chosen (a tie
    goes to the second answer, as Eq. 8 reads)."""
    rows = sampled.pairs
    if cfg.judge == "reward_model":
        return judges.reward_model_prefers_first(reward_judge, rows)
    if cfg.judge == "llm":  # the SFT model, fixed, asked to judge (SPA App. B.2 uses a fixed judge)
        with session.model_for(SFT) as m:
            return judges.llm_prefers_first(m, session.tokenizer, session.setting, rows, session.max_length)
    if cfg.judge == "random":
        coin = random.Random(session.seed_of("coin", t))
        return [coin.random() < 0.5 for _ in rows]
    return implicit_first_wins(session, rows, t, cfg, names)


def objective_for(cfg: SpaConfig, t: int, session: Session, rows: list[dict], names: dict) -> losses.TrainingLoss:
    """The round's loss; ``rows`` (with ``id``) are the round's pairs, for the DRO variant's worst case."""
    if cfg.loss == "dpo":
        return losses.make("dpo", beta=cfg.beta)
    if cfg.loss == "dro":
        return dro.round_loss(session, rows, names[t - 1], names[t], cfg.beta, cfg.dro_epsilon, cfg.dro_pieces,
                              cfg.dro_solves, cfg.warmup_fraction)
    return losses.make("spa_refined", beta=cfg.beta, alpha=cfg.alpha, k=cfg.k, lam=cfg.lam(t), decoupled=cfg.decoupled,
                       warmup_fraction=cfg.warmup_fraction)


@dataclass
class Round:
    """One SPA iteration: its record (data, label quality, what the noise flag did, training,
    evaluation) and the judge's verdict on each sampled pair (``first_wins``: True where the first
    answer was chosen), to compare judges on the same pairs."""

    record: dict
    first_wins: list[bool]


@dataclass
class Annotation:
    """A round's labelled pairs (the winner as ``chosen``; ``id`` their index; ``wrong`` whether the
    label disagrees with the gold judge, None for a gold tie) and its record so far (data sizes and
    label quality)."""

    rows: list[dict]
    record: dict


@dataclass
class Trained:
    """A round's training: the loss (with what its flag or worst case did) and the trainer's history."""

    loss: losses.TrainingLoss
    history: object


def gate(seed_eval: dict, eq7_accuracy: float) -> dict:
    """The precondition of every SPA claim, as measured in one seed (see the module doc); the
    report decides it once, pooled over seeds."""
    beats = seed_eval["win_low"] > 0.5
    return {"seed_beats_sft": bool(beats), "seed_win_low": seed_eval["win_low"], "seed_win_rate": seed_eval["win_rate"],
            "eq7_accuracy": eq7_accuracy, "passed": bool(beats and eq7_accuracy > GATE_ACCURACY)}


@dataclass
class SpaRun:
    """A run of Algorithm 1: one record per iteration (0 = DPO on the seed; the records are the
    metrics' JSON layout) and the gate."""

    rounds: list[dict]
    gate: dict | None

    def to_json(self) -> dict:
        return {"rounds": self.rounds, "gate": self.gate}


@dataclass
class SpaLoop:
    """Algorithm 1 on a session, one step at a time (:meth:`sample`, :meth:`judge`,
    :meth:`annotate`, :meth:`measure_gate`, :meth:`train`, :meth:`finish`), a round at a time
    (:meth:`step`) or a whole run at a time (:meth:`run`); every way calls the same steps in the
    same order. ``names`` maps the iteration t to its session iterate (0: the seed model); new
    iterates get fresh names."""

    session: Session
    cfg: SpaConfig = field(default_factory=SpaConfig)
    stage: str = "SPA"
    reward_judge: object = None
    names: dict = field(default_factory=dict)      # iteration -> session iterate
    rounds: list[dict] = field(default_factory=list)
    gate: dict | None = None                       # measured once, in round 1
    seed_eval: dict | None = None                  # pi_0's evaluation (the gate's first condition)
    started: dict = field(default_factory=dict)    # iteration -> when its round began

    def start(self, seed_rows: list[dict], seed_iterate: int | None = None) -> dict:
        """pi_0: DPO on the gold seed from pi_init, ``seed_epochs`` epochs (or an iterate already
        trained so, shared with another run); its evaluation is round 0's record."""
        started = time.perf_counter()
        if seed_iterate is None:
            self.names[0] = self.session.fresh()
            self.session.train(self.names[0], plain(seed_rows), losses.make("dpo", beta=self.cfg.beta), ref=SFT,
                               init_from=None, epochs=self.cfg.seed_epochs, stage=f"{self.stage} seed")
        else:
            self.names[0] = seed_iterate
        self.seed_eval = self.session.evaluate(self.names[0], label=f"{self.stage} round 0").record
        self.rounds = [{"iteration": 0, "pairs": len(seed_rows), **self.seed_eval, "seconds": time.perf_counter() - started}]
        return self.rounds[0]

    def sample(self, t: int, prompts: list[str]) -> SampledPairs:
        """Line 2: two answers of pi_{t-1} per prompt (the round's clock starts here)."""
        self.started[t] = time.perf_counter()
        return sample_pairs(self.session, t, prompts, self.names, f"{self.stage} round {t}")

    def judge(self, t: int, sampled: SampledPairs) -> list[bool]:
        """Lines 3-4: the configured judge's verdict on each pair (Eq. 7-8 for SPA)."""
        return first_wins(self.session, sampled, t, self.cfg, self.names, self.reward_judge)

    def annotate(self, t: int, sampled: SampledPairs, wins: list[bool]) -> Annotation:
        """The pairs ordered by the judge, each marked against the gold judge, and the round's record
        so far."""
        rows = ordered(sampled.pairs, wins)
        gaps = self.session.gold_gaps(rows)
        record = {"iteration": t, "prompts": sampled.n_prompts, "pairs": len(rows),
                  "identical_share": sampled.identical_share, **label_quality(gaps)}
        rows = [dict(r, id=i, wrong=None if g == 0 else bool(g < 0)) for i, (r, g) in enumerate(zip(plain(rows), gaps))]
        return Annotation(rows, record)

    def measure_gate(self, sampled: SampledPairs, wins: list[bool]) -> dict:
        """The gate (see the module doc) from pi_0's evaluation and Eq. 7's labels of round 1's pairs:
        the configured judge's own verdicts where that judge is Eq. 7 against the SFT model, else
        Eq. 7's verdicts on the same pairs."""
        if self.seed_eval is None:
            raise ValueError(f"{self.stage}: the gate needs pi_0's evaluation; call start() first")
        eq7 = wins if self.cfg.judge == "implicit" and self.cfg.judge_reference == "init" else \
            implicit_first_wins(self.session, sampled.pairs, 1, SpaConfig(beta=self.cfg.beta), self.names)
        self.gate = gate(self.seed_eval, label_quality(self.session.gold_gaps(ordered(sampled.pairs, eq7)))["label_accuracy"])
        return self.gate

    def train(self, t: int, rows: list[dict]) -> Trained:
        """Line 5: pi_t from pi_{t-1}, reference pi_{t-1}, one epoch of the round's loss (Eq. 10
        with the noise flag of Eq. 11-12 for SPA)."""
        if t not in self.names:
            self.names[t] = self.session.fresh()
        objective = objective_for(self.cfg, t, self.session, rows, self.names)
        history = self.session.train(self.names[t], rows, objective, ref=self.names[t - 1], init_from=self.names[t - 1],
                                     stage=f"{self.stage} round {t}")
        return Trained(objective, history)

    def finish(self, t: int, annotation: Annotation, trained: Trained) -> dict:
        """The round's record completed with what the loss did and pi_t's evaluation."""
        record, objective, history = annotation.record, trained.loss, trained.history
        if isinstance(objective, losses.DroRound):
            record.update(dro_moved_share=objective.moved_shares, dro_weights=objective.weights)
        if isinstance(objective, losses.SpaRefined):
            record.update(objective.flags.summary())
        where = f"{self.stage} round {t}"
        record.update(noise_share=_last(history, "noise_share"), pairs_truncated=history.pairs_truncated,
                      **self.session.evaluate(self.names[t], previous=self.names[t - 1], label=where).record,
                      seconds=time.perf_counter() - self.started.get(t, time.perf_counter()))
        log.info("%s: %s", where, record)
        self.rounds.append(record)
        return record

    def step(self, t: int, prompts: list[str]) -> Round:
        """One round: sample, judge, annotate (and in round 1 the gate), train, finish."""
        sampled = self.sample(t, prompts)
        wins = self.judge(t, sampled)
        annotation = self.annotate(t, sampled, wins)
        if t == 1 and self.seed_eval is not None:
            self.measure_gate(sampled, wins)
        return Round(self.finish(t, annotation, self.train(t, annotation.rows)), wins)

    def run(self, prompt_sets: list[list[str]], first: int = 1) -> SpaRun:
        """Rounds ``first``, ``first + 1``, ... on ``prompt_sets``; returns the run so far."""
        for t, prompts in enumerate(prompt_sets, start=first):
            self.step(t, prompts)
        return self.result()

    def result(self) -> SpaRun:
        return SpaRun(list(self.rounds), self.gate)


def run_spa(session: Session, seed_rows: list[dict], prompt_sets: list[list[str]], cfg: SpaConfig = SpaConfig(),
            seed_iterate: int | None = None, reward_judge=None, stage: str = "SPA") -> SpaLoop:
    """Algorithm 1 from the gold seed over the prompt sets in one call (the gate measured on
    round 1). With ``seed_iterate`` the seed DPO model is that (already trained) iterate. Returns
    the loop: :meth:`SpaLoop.result` is the run, ``names`` says which iterate each round trained."""
    loop = SpaLoop(session, cfg, stage, reward_judge)
    loop.start(seed_rows, seed_iterate)
    loop.run(prompt_sets)
    return loop


def _last(history, key: str) -> float:
    try:
        return history.last(key)
    except KeyError:
        return 0.0

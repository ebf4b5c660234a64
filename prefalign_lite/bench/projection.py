"""The projected wall time of one SPA iteration at a config's size, from the bench's measured rates."""
from __future__ import annotations


def project_spa_iteration(n_prompts: int, tokens_per_s: float, forward_s: float, spa_step_s: float, pairs: int,
                          bench_length: int, new_tokens: int = 300, length: int = 1024, *, score_s: float,
                          score_rows: int, score_length: int, n_eval: int = 500, kl_prompts: int = 100) -> dict:
    """Hours of one SPA iteration on ``N = n_prompts`` prompts, from the measured rates:

    * sampling 2N responses of ``new_tokens``: ``2N * new_tokens / tokens_per_s``;
    * judging (Eq. 7): one forward of pi_{t-1} and one of pi_init over the 2N sequences, measured as
      ``forward_s`` per batch of ``2 * pairs`` rows of ``bench_length`` tokens and scaled linearly
      to ``length`` tokens: ``2 * (2N / (2 * pairs)) * forward_s * length / bench_length``;
    * scoring the 2N answers with the reward model (the round's label quality), measured as
      ``score_s`` per batch of ``score_rows`` conversations of ``score_length`` tokens:
      ``(2N / score_rows) * score_s * length / score_length``;
    * training one epoch on N pairs with SPA's refined objective:
      ``(N / pairs) * spa_step_s * length / bench_length``;
    * evaluating the new iterate: ``n_eval`` answers sampled and scored, and the two KLs (to SFT
      and to pi_{t-1}) on ``kl_prompts`` answers sampled at temperature 1, each scored under the
      three models: ``(n_eval + kl_prompts) * new_tokens / tokens_per_s + (n_eval / score_rows) *
      score_s * scale + 3 * (kl_prompts / (2 * pairs)) * forward_s * scale``.

    Linear scaling in length ignores attention's quadratic term (small next to the MLPs at 1,024
    tokens) and sampling rates measured at a shorter context; it is an estimate, not a measurement."""
    scale, score_scale = length / bench_length, length / score_length
    sample = 2 * n_prompts * new_tokens / tokens_per_s
    judge = 2 * (2 * n_prompts / (2 * pairs)) * forward_s * scale
    score = (2 * n_prompts / score_rows) * score_s * score_scale
    train = (n_prompts / pairs) * spa_step_s * scale
    evaluate = ((n_eval + kl_prompts) * new_tokens / tokens_per_s + (n_eval / score_rows) * score_s * score_scale
                + 3 * (kl_prompts / (2 * pairs)) * forward_s * scale)
    parts = {"sample": sample, "judge": judge, "score": score, "train": train, "evaluate": evaluate}
    return {"projection.n_prompts": n_prompts, "projection.new_tokens": new_tokens, "projection.length": length,
            "projection.n_eval": n_eval, "projection.kl_prompts": kl_prompts,
            **{f"projection.{k}_h": v / 3600 for k, v in parts.items()},
            "projection.spa_iteration_h": sum(parts.values()) / 3600}

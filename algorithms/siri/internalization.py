"""SIRI's advantage-weighted internalization: distil skill-guided actions into the plain prompt.

For each skill-augmented group of an iteration (the skill half of a validation pair):

1. **Trajectory gate** (:func:`passes_gate`): an episode is eligible only if its skill is
   ``active`` (or not retired with ``U > gate_threshold``) and its R is at least the mean R of the
   paired plain group. ``gate: false`` lets every episode of a usable skill through.
2. **Action-level selection**: the base optimizer's advantages (GiGPO: episode level plus
   anchor-state step level) computed over the skill group; only steps with ``A_t > 0`` are kept.
3. **Weights** (:func:`step_weight`): ``w_t = clip(U, 0, 1) * A_t`` (``weighting: both``),
   ``clip(U, 0, 1)`` (utility), ``A_t`` (advantage) or 1 (none).
4. **Loss** (:func:`internalization_loss`): the weighted negative log-likelihood of the step's
   action tokens under the *plain* prompt (the prompt rebuilt without the skill text),
   ``L_int = - sum_t w_t log pi(a_t | x_t^plain) / sum_t w_t`` (``algorithms.losses.weighted_nll``),
   added to the base loss as ``lambda_int(k) * L_int`` (:func:`lambda_int`).

The weights of one iteration are computed once over the whole batch; ``weight_total`` (their sum
over every action token) is passed to every micro-batch, so the micro-batch losses add up to one
weighted mean over the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from algorithms.siri.validation import SKILL_VARIANT


def lambda_int(iteration: int, first_iteration: int | None, lambda_max: float, warmup_iters: int) -> float:
    """lambda_int(k) = lambda_max * min(1, k / W), k = iteration - first_iteration + 1 (1 at the first
    internalization step, so that step already gets lambda_max / W); 0 before it; W = 0: lambda_max."""
    if first_iteration is None or iteration < first_iteration:
        return 0.0
    if warmup_iters <= 0:
        return float(lambda_max)
    k = iteration - first_iteration + 1
    return float(lambda_max) * min(1.0, k / warmup_iters)


def passes_gate(status: str, utility: float, value: float, plain_mean: float, *, gate_threshold: float) -> bool:
    """The trajectory gate: a usable skill that is active or has U > gate_threshold, and an episode
    whose R is at least the paired plain group's mean R."""
    if status == "retired":
        return False
    trusted = status == "active" or utility > gate_threshold
    return bool(trusted and value >= plain_mean)


def step_weight(utility: float, advantage: float, weighting: str) -> float:
    """w_t of a step with advantage A_t: 0 unless A_t > 0; then clip(U,0,1)*A_t, clip(U,0,1), A_t or 1."""
    if not advantage > 0:
        return 0.0
    u = min(1.0, max(0.0, float(utility)))
    if weighting == "both":
        return u * float(advantage)
    if weighting == "utility":
        return u
    if weighting == "advantage":
        return float(advantage)
    if weighting == "none":
        return 1.0
    raise ValueError(f"unknown weighting {weighting!r}; use none, utility, advantage or both")


@dataclass
class SkillGroupInfo:
    """What the weights of one skill group depend on."""

    skill_id: str
    status: str                   # the skill's status when the weights are computed
    utility: float                # its U then (1 with validation off)
    plain_mean: float             # mean R of the paired plain group


@dataclass
class InternalizationWeights:
    """Per-row weights (aligned with the step table) and what the selection did."""

    weights: np.ndarray
    eligible_episodes: list[str] = field(default_factory=list)
    gated_out_episodes: list[str] = field(default_factory=list)
    kept_steps: int = 0            # rows with w > 0
    positive_steps: int = 0        # rows of eligible episodes with A > 0

    @property
    def total(self) -> float:
        return float(self.weights.sum())


def internalization_weights(rows: Any, advantages: np.ndarray, groups: Mapping[str, SkillGroupInfo],
                            episode_values: Mapping[str, float], *, gate: bool, gate_threshold: float,
                            weighting: str) -> InternalizationWeights:
    """Weights of every row of ``rows`` (a step table: ``episode_id``, ``group_id``, ``variant``).

    Rows of plain groups, of groups not in ``groups``, of episodes without a value in
    ``episode_values`` (errors) and of gated-out episodes get 0; the rows of eligible episodes get
    :func:`step_weight` of their skill's U and their advantage.
    """
    n = len(rows)
    advantages = np.asarray(advantages, dtype=np.float64)
    if advantages.shape != (n,):
        raise ValueError(f"got {advantages.shape[0] if advantages.ndim else 0} advantages for {n} rows")
    weights = np.zeros(n, dtype=np.float64)
    out = InternalizationWeights(weights)
    decided: dict[str, bool] = {}
    episode_ids = rows["episode_id"].astype(str).to_numpy()
    group_ids = rows["group_id"].astype(str).to_numpy()
    variants = rows["variant"].astype(str).to_numpy() if "variant" in rows.columns else np.full(n, SKILL_VARIANT)
    for i in range(n):
        info = groups.get(group_ids[i])
        if info is None or variants[i] != SKILL_VARIANT:
            continue
        episode = episode_ids[i]
        if episode not in decided:
            value = episode_values.get(episode)
            if info.status == "retired" or value is None:     # no value: the episode failed to run
                ok = False
            elif gate:
                ok = passes_gate(info.status, info.utility, float(value), info.plain_mean,
                                 gate_threshold=gate_threshold)
            else:
                ok = True
            decided[episode] = ok
            (out.eligible_episodes if ok else out.gated_out_episodes).append(episode)
        if not decided[episode]:
            continue
        if advantages[i] > 0:
            out.positive_steps += 1
        weights[i] = step_weight(info.utility, float(advantages[i]), weighting)
    out.kept_steps = int((weights > 0).sum())
    return out


# ----------------------------------------------------------------------------------------------
# The loss
# ----------------------------------------------------------------------------------------------
def plain_step(step: Any, plain_prompt_ids: Sequence[int]) -> Any:
    """A copy of a step record whose prompt is the plain one (same response, mask and candidates)."""
    return replace(step, prompt_ids=list(plain_prompt_ids), prompt_additions=[])


def internalization_loss(policy: Any, steps: Sequence[Any], weights: Any, *,
                         plain_prompt_ids: Callable[[Any], Sequence[int]], weight_total: float | None = None,
                         score_temperature: float = 1.0) -> Any:
    """L_int over ``steps`` (step records of skill-augmented rollouts) with per-step ``weights``.

    Each step's log-prob is recomputed under the policy's current weights with the prompt
    ``plain_prompt_ids(step)`` (the step's prompt without the skill text), the action tokens and,
    in score mode, the candidates unchanged; then ``weighted_nll`` with ``weight_total`` as the
    denominator (default: the weighted action-token count of these steps).
    """
    import torch

    from algorithms.losses import weighted_nll
    from siri_bench.records import current_logprobs

    if not steps:
        raise ValueError("internalization_loss needs at least one step")
    plain = [plain_step(s, plain_prompt_ids(s)) for s in steps]
    out = current_logprobs(policy, plain, grad=True, temperature=score_temperature)
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64), dtype=out.values.dtype, device=out.values.device)
    return weighted_nll(out.values, out.mask, w, weight_total)

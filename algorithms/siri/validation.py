"""SIRI's paired validation: G plain and G skill-augmented rollouts of one task from one env seed.

A *pair* is two episode groups on the same training task of the skill's category (drawn from the
run's task stream), with the same task seed and env seed, so every rollout starts from the same
state: the plain group sees the original prompt, the skill group the same prompt with the skill
text in the additions slot (``EpisodeSpec.variant="skill"``).

The paired gain is ``d = mean(R_skill) - mean(R_plain)`` over the pair, R being the episode's
return, success or score (``validation_return``); the utility update is the bank's EMA
(:meth:`~algorithms.siri.bank.SkillBank.validate`). Both groups are training data: the plain group
enters the base loss like any plain group, the skill group feeds internalization.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from siri_bench.rollout import EpisodeSpec
    from siri_bench.seeding import TaskDraw

SKILL_VARIANT = "skill"
PLAIN_VARIANT = "plain"


@dataclass(frozen=True)
class ValidationPair:
    """The two groups that validate one skill in one iteration."""

    skill_id: str
    category: str
    task_id: str
    plain_group: str
    skill_group: str
    iteration: int


def episode_value(episode: Any, measure: str) -> float:
    """R of an episode record: ``return`` (native return), ``success`` (won, 0/1) or ``score``."""
    if measure == "return":
        return float(episode.return_)
    if measure == "success":
        return float(bool(episode.won))
    if measure == "score":
        return float(episode.score)
    raise ValueError(f"unknown validation measure {measure!r}; use return, success or score")


def paired_gain(skill_values: Sequence[float], plain_values: Sequence[float]) -> float:
    """d = mean(R_skill) - mean(R_plain); both groups must be non-empty."""
    if len(skill_values) == 0 or len(plain_values) == 0:
        raise ValueError("a paired gain needs at least one skill-augmented and one plain episode")
    return float(np.mean(np.asarray(skill_values, dtype=np.float64))
                 - np.mean(np.asarray(plain_values, dtype=np.float64)))


def ema(utility: float, gain: float, beta: float) -> float:
    """U <- (1 - beta) U + beta d."""
    return (1.0 - beta) * float(utility) + beta * float(gain)


def pair_specs(skill_id: str, category: str, draw: TaskDraw, *, run_seed: int, iteration: int, group: int,
               group_size: int) -> tuple[ValidationPair, list[EpisodeSpec]]:
    """The 2 x G episode specs of one pair on the drawn task: a plain training group with group index
    ``group`` (:func:`~siri_bench.rollout.group_specs`) and its skill-augmented twin
    (:func:`~siri_bench.rollout.paired_specs`: same task, task seed and env seed, ``-skill`` ids)."""
    from siri_bench.rollout import group_specs, paired_specs

    plain = group_specs([draw], run_seed=run_seed, iteration=iteration, group_size=group_size, first_group=group)
    skill = paired_specs(plain, SKILL_VARIANT)
    pair = ValidationPair(skill_id, category, draw.task_id, plain[0].group_id, skill[0].group_id, iteration)
    return pair, plain + skill

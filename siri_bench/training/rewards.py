"""The training reward and the step table the estimators and the update read.

The env's reward is its native one (ALFWorld: 1 on the winning step; WebShop: the purchase score).
The training reward follows verl-agent: ``train.reward_scale`` (default 10) times the outcome, on
the step that ends the episode by the env's own termination:

* ``train.reward: won`` (default): ``scale * won`` (only a real win counts);
* ``train.reward: score``: ``scale * score`` (WebShop's partial purchase score; ALFWorld's score is
  1 exactly when won, so both are the same there).

Every other step gets 0. The invalid-action penalty is *not* part of this reward: it is applied by
the estimators from the ``valid`` column (``invalid_penalty = policy.invalid_action_penalty``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pandas as pd

from siri_bench.records import EpisodeRecord, StepRecord, loss_unit_count

RewardMode = Literal["won", "score"]

#: Columns of the step table, in order.
STEP_TABLE_COLUMNS = (
    "row", "episode_id", "group_id", "step", "variant", "actor", "task_id", "task_type", "reward", "env_reward",
    "penalty", "valid", "anchor", "won", "score", "done", "terminated", "units",
)


def training_reward(step: StepRecord, mode: RewardMode = "won", scale: float = 10.0) -> float:
    """The training reward of one step (see the module docstring)."""
    if not step.terminated:
        return 0.0
    if mode == "won":
        return float(scale) if step.won else 0.0
    if mode == "score":
        return float(scale) * float(step.score)
    raise ValueError(f"train.reward = {mode!r}: use 'won' or 'score'")


def step_table(episodes: Sequence[EpisodeRecord], mode: RewardMode = "won", scale: float = 10.0) -> pd.DataFrame:
    """One row per step of ``episodes`` (episode order, then step order), with the training reward.

    Columns (:data:`STEP_TABLE_COLUMNS`): ``row`` (index into the flat list of the episodes'
    step records), ids, ``variant`` and ``actor`` of the episode, ``reward`` (training reward),
    ``env_reward`` (native), ``penalty``/``valid`` (invalid-action penalty and validity), ``anchor``
    (GiGPO's step-group key), outcome columns and ``units`` (loss units: action tokens, or 1 in
    score mode).
    """
    rows = []
    for episode in episodes:
        for s in episode.steps:
            rows.append((len(rows), s.episode_id, s.group_id, s.step, episode.variant, s.actor, s.task_id, s.task_type,
                         training_reward(s, mode, scale), float(s.reward), float(s.penalty), bool(s.valid), s.anchor,
                         bool(s.won), float(s.score), bool(s.done), bool(s.terminated), loss_unit_count(s)))
    return pd.DataFrame(rows, columns=list(STEP_TABLE_COLUMNS))

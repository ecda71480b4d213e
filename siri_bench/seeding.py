"""Per-episode seeds derived from the run seed with ``numpy.random.SeedSequence`` streams.

Every episode has three seeds, recorded in its row:

* ``task_seed`` - picks the task (training: a draw of the run's :class:`TaskStream`; evaluation uses
  a fixed task list and records the seed of the task's slot);
* ``env_seed`` - passed to ``env.reset(seed=...)``;
* ``policy_seed`` - the policy's random stream for the episode (each step samples with
  ``step_seed(policy_seed, step)``).

Seeds are ``SeedSequence(entropy=run_seed, spawn_key=(phase, stream, iteration, slot, member))``
draws, so they do not depend on worker counts, batch sizes or the order episodes run in. The G
members of a training group share ``task_seed`` and ``env_seed`` (same task, same start) and differ
in ``policy_seed``. Evaluation seeds do not depend on the iteration except ``policy_seed``, so
every evaluation round plays the same tasks from the same starts.

Training tasks come from **one** stateful stream owned by the run (:class:`TaskStream`, seeded from
the run seed; never drawn by workers). Its state is saved in every checkpoint, so a resumed run
draws exactly the tasks the uninterrupted run would have drawn, and algorithms may draw extra tasks
(e.g. paired validation rollouts) from the same stream without colliding with other draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Phase = Literal["train", "eval", "validation"]
_PHASES = {"train": 0, "eval": 1, "validation": 2}
_STREAMS = {"task": 0, "env": 1, "policy": 2, "step": 3, "update": 4}


def derive_seed(run_seed: int, phase: str, stream: str, *key: int) -> int:
    """A 63-bit seed for ``(phase, stream, *key)`` under ``run_seed``."""
    seq = np.random.SeedSequence(entropy=int(run_seed), spawn_key=(_PHASES[phase], _STREAMS[stream],
                                                                  *(int(k) for k in key)))
    hi, lo = seq.generate_state(2, dtype=np.uint32)
    return int((int(hi) << 32 | int(lo)) & ((1 << 63) - 1))


def step_seed(policy_seed: int, step: int) -> int:
    """The sampling seed of one step of an episode."""
    return derive_seed(policy_seed, "train", "step", step)


@dataclass(frozen=True)
class EpisodeSeeds:
    task_seed: int
    env_seed: int
    policy_seed: int


def train_episode_seeds(run_seed: int, iteration: int, group: int, member: int) -> EpisodeSeeds:
    """Seeds of member ``member`` of training group ``group`` at ``iteration``."""
    return EpisodeSeeds(
        task_seed=derive_seed(run_seed, "train", "task", iteration, group),
        env_seed=derive_seed(run_seed, "train", "env", iteration, group),
        policy_seed=derive_seed(run_seed, "train", "policy", iteration, group, member),
    )


def eval_episode_seeds(run_seed: int, iteration: int, task_index: int, trial: int) -> EpisodeSeeds:
    """Seeds of trial ``trial`` of the ``task_index``-th evaluation task at an evaluation round."""
    return EpisodeSeeds(
        task_seed=derive_seed(run_seed, "eval", "task", task_index),
        env_seed=derive_seed(run_seed, "eval", "env", task_index, trial),
        policy_seed=derive_seed(run_seed, "eval", "policy", iteration, task_index, trial),
    )


def sample_task_id(task_ids: list[str], task_seed: int) -> str:
    """The training task a group plays: drawn uniformly from the split with its task seed."""
    if not task_ids:
        raise ValueError("no tasks to draw from")
    return task_ids[int(np.random.default_rng(task_seed).integers(len(task_ids)))]


@dataclass(frozen=True)
class TaskDraw:
    """One training task drawn from the run's task stream, with the seed that picked it."""

    task_id: str
    task_seed: int


class TaskStream:
    """The run's stream of training tasks: uniform draws with replacement over a split's task ids.

    Each draw takes a fresh 63-bit seed from a numpy generator seeded with
    ``derive_seed(run_seed, "train", "task")`` and picks the task with :func:`sample_task_id`, so the
    recorded ``task_seed`` alone reproduces the choice. :meth:`state_dict` / :meth:`load_state_dict`
    save and restore the generator (checkpoints).
    """

    def __init__(self, run_seed: int):
        self.run_seed = int(run_seed)
        self._rng = np.random.default_rng(derive_seed(run_seed, "train", "task"))
        self.draws = 0

    def draw(self, task_ids: Sequence[str], n: int) -> list[TaskDraw]:
        """``n`` tasks of ``task_ids`` (canonical order), each with its task seed."""
        ids = list(task_ids)
        if not ids:
            raise ValueError("no tasks to draw from")
        seeds = self._rng.integers(0, np.iinfo(np.int64).max, size=int(n), dtype=np.int64)
        self.draws += int(n)
        return [TaskDraw(sample_task_id(ids, int(s)), int(s)) for s in seeds]

    def state_dict(self) -> dict[str, Any]:
        return {"run_seed": self.run_seed, "draws": self.draws, "bit_generator": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["run_seed"]) != self.run_seed:
            raise ValueError(f"task stream of run seed {state['run_seed']} loaded into a run with seed {self.run_seed}")
        self._rng.bit_generator.state = state["bit_generator"]
        self.draws = int(state["draws"])

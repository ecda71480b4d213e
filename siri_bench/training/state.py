"""What the algorithm hooks see during training (see :mod:`algorithms.base` for the hooks)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from siri_bench.records import EpisodeRecord, StepRecord, current_logprobs
from siri_bench.rollout import EpisodeSpec, RolloutResult, RolloutSettings, rebuild_prompt_ids
from siri_bench.seeding import TaskStream


@dataclass
class TrainingState:
    """The run as the training hooks see it; one object per run, updated every iteration.

    ``episodes`` (after the rollout), ``steps`` (the step table with ``advantage`` and ``base``
    columns, after the advantages) and ``metrics`` (the iteration's metrics so far) describe the
    current iteration. :meth:`rollout` plays extra episodes with the current policy and the training
    decoding settings (their steps are not trained on unless returned through ``plan_rollouts``).
    """

    config: Any                                   # ExperimentConfig
    run_dir: Any                                  # RunDir
    run_seed: int
    policy: Any                                   # the rollout policy (current weights)
    task_stream: TaskStream                       # the run's one source of training tasks
    train_task_ids: list[str]
    settings: RolloutSettings                     # training rollout settings
    iteration: int = 0
    episodes: list[EpisodeRecord] = field(default_factory=list)
    steps: pd.DataFrame | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    task_info_fn: Callable[[str], dict[str, Any]] | None = None
    rollout_fn: Callable[[Sequence[EpisodeSpec]], RolloutResult] | None = None
    _task_info: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def group_size(self) -> int:
        return int(self.config.train.group_size)

    @property
    def groups_per_iter(self) -> int:
        return int(self.config.train.groups_per_iter)

    def task_info(self, task_id: str) -> dict[str, Any]:
        """``env.unwrapped.task_info(task_id)`` of a training task (task_type, task, ...), cached."""
        if task_id not in self._task_info:
            if self.task_info_fn is None:
                raise RuntimeError("this TrainingState has no env to ask for task info")
            self._task_info[task_id] = dict(self.task_info_fn(task_id))
        return self._task_info[task_id]

    def rollout(self, specs: Sequence[EpisodeSpec]) -> RolloutResult:
        if self.rollout_fn is None:
            raise RuntimeError("this TrainingState cannot play episodes")
        return self.rollout_fn(specs)


@dataclass
class LossBatch:
    """One micro-batch of an optimizer step, as :meth:`Algorithm.loss_terms` sees it.

    ``rows`` / ``steps``: the micro-batch's rows of the step table (with ``advantage`` and ``base``)
    and their records, in the same order. ``minibatch`` / ``minibatch_steps``: every row of the
    optimizer step the micro-batch belongs to, for normalisers that must span micro-batches (a loss
    term is a micro-batch's share of the mini-batch's term).
    """

    rows: pd.DataFrame
    steps: list[StepRecord]
    minibatch: pd.DataFrame
    minibatch_steps: list[StepRecord]
    iteration: int
    settings: RolloutSettings
    tokenizer: Any

    def plain_prompt_ids(self, step: StepRecord) -> list[int] | None:
        """The step's prompt rebuilt without any prompt additions (None: it does not fit)."""
        if not step.prompt_additions:
            return list(step.prompt_ids)
        return rebuild_prompt_ids(step, self.settings, self.tokenizer)

    def logprobs(self, policy: Any, steps: Sequence[StepRecord], *,
                 prompt_ids: Sequence[Sequence[int]] | None = None, with_entropy: bool = False) -> Any:
        """Log-probs (with grad) of the loss units of ``steps`` under the current weights, optionally
        under other prompts (:func:`siri_bench.records.current_logprobs`)."""
        return current_logprobs(policy, steps, grad=True, temperature=self.settings.score_temperature,
                                with_entropy=with_entropy, prompt_ids=prompt_ids)

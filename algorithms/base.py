"""The algorithm interface every registered algorithm implements.

An algorithm is one class in one module (CleanRL style): its parameters are one pydantic model
``Config`` at the top of the module (documented fields, unknown keys rejected), and the class
overrides the hooks it needs. The harness (rollout engine, trainer loop, evaluation runner)
never branches on an algorithm's name; it only calls these hooks, in this order:

One training iteration (:func:`siri_bench.trainer.train`; ``state`` is the run's
:class:`~siri_bench.training.state.TrainingState`):

1. :meth:`Algorithm.plan_rollouts` ``(iteration, tasks, state) -> list[EpisodeSpec]`` - the episodes
   to play, given the B tasks the trainer drew from the run's task stream. Default: B groups of G
   plain copies (same task and env seed per group). SIRI adds paired ``variant="skill"`` groups
   (:func:`siri_bench.rollout.paired_specs`); D2Skill gives half of each group ``variant="skill"``.
2. :meth:`Algorithm.prompt_additions` ``(ctx) -> list[str]`` - text added to a step's prompt
   (memories, skills, reflections); ``ctx.variant`` and ``ctx.phase`` say which episode asks.
   Additions are recorded per step, so an evaluation can prove that an algorithm added nothing.
3. :meth:`Algorithm.on_episode_end` ``(episode, phase)`` - every finished episode (training and
   evaluation), e.g. success buffers, memory and skill banks.
4. :meth:`Algorithm.shape_rewards` ``(steps, episodes) -> steps`` - change the step table's training
   ``reward`` column (D2Skill's intrinsic reward). Default: unchanged.
5. :meth:`Algorithm.advantages` ``(steps) -> ndarray`` - one advantage per step row. Default: the
   estimator named by ``Config.estimator`` (:mod:`algorithms.estimators`) with the config's
   parameters and ``invalid_penalty = policy.invalid_action_penalty``.
6. :meth:`Algorithm.base_loss_rows` ``(steps) -> bool ndarray`` - which rows enter the base PPO-clip
   loss (SIRI: plain rollouts only; SFT: none). Default: all.
7. :meth:`Algorithm.loss_terms` ``(batch, policy) -> dict[str, Tensor]`` - extra loss terms of one
   micro-batch (:class:`~siri_bench.training.state.LossBatch`), added to the base loss before
   ``backward`` (SIRI's internalization NLL under re-built plain prompts; SFT's NLL). Default: none.
8. :meth:`Algorithm.on_iteration_end` ``(state) -> dict`` - after the update and the weight sync,
   before evaluation and the checkpoint; returns extra metrics for the iteration's row (name them
   ``<algorithm>/...``).
9. :meth:`Algorithm.evaluate` ``(ctx, iteration) -> DataFrame`` - an evaluation round (default:
   :func:`siri_bench.evaluate.run_evaluation`; Reflexion overrides it with repeated trials, MemRL
   builds its memory first).
10. :meth:`Algorithm.state_dict` / :meth:`Algorithm.load_state_dict` - everything that must survive
    a checkpoint (skill banks, memories, counters); saved in every checkpoint with ``torch.save``.

The step table (``steps`` above) is a pandas DataFrame with one row per step, in the order of
``state.episodes`` (episodes in spec order, steps in order); see
:func:`siri_bench.training.rewards.step_table` for its columns. Its ``row`` column indexes the
iteration's :class:`~siri_bench.records.StepRecord` list.

Around them: :meth:`Algorithm.setup` ``(ctx)`` is called once the run's policy exists (algorithms
whose memory or skill writer is the run's own policy keep the run context), and every finished
episode is annotated by :meth:`Algorithm.annotate_episode` with the algorithm's ``memory_scope``
and its ``position`` in the run's order (issue "trustworthy runs": runs whose algorithm carries
state across episodes are not samples of independent episodes, and the order in which episodes
fed that state is part of the result).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel

from siri_bench.config import StrictModel

if TYPE_CHECKING:  # import-light at run time: configs validate without numpy, pandas or torch
    import numpy as np
    import pandas as pd

    from siri_bench.records import EpisodeRecord
    from siri_bench.rollout import EpisodeSpec
    from siri_bench.seeding import TaskDraw
    from siri_bench.training.state import LossBatch, TrainingState

Phase = Literal["train", "eval", "validation"]
MemoryScope = Literal["none", "task", "run"]


class NoParams(StrictModel):
    """An algorithm without parameters."""


@dataclass
class PromptContext:
    """What an algorithm may look at when it adds text to a prompt."""

    env_id: str
    task_id: str
    task_type: str
    task: str                        # the task sentence ("put a clean mug in coffeemachine")
    step: int                        # 0-based step index in the episode
    observation: str
    admissible_actions: Sequence[str]
    phase: Phase = "train"
    episode_id: str = ""
    group_id: str = ""
    trial: int = 0                   # reflexion-style repeated trials of one task
    variant: str = "plain"           # "plain" or e.g. "skill" for paired rollouts
    history: Sequence[tuple[str, str]] = field(default_factory=tuple)  # (observation, action) pairs


class Algorithm:
    """Base class of all algorithms. Subclasses set ``Config`` and override hooks."""

    #: the algorithm's parameters (validated from the ``algorithm:`` section of a config)
    Config: ClassVar[type[BaseModel]] = NoParams
    #: whether the algorithm updates the policy's weights (False: evaluation only)
    trains: ClassVar[bool] = False
    #: what state carries across episodes ("none", "task": within one task's trials, "run")
    memory_scope: ClassVar[MemoryScope] = "none"

    def __init__(self, params: BaseModel | None = None, **context: Any):
        self.params = params if params is not None else self.Config()
        #: ``config`` (the run's ExperimentConfig), ``run_dir`` (RunDir) and ``seed`` (run seed)
        self.context = context
        #: episodes seen so far in this run (training and evaluation): the next episode's position
        self.episodes_seen = 0

    def setup(self, run: Any) -> None:
        """Called once with the run's :class:`~siri_bench.trainer.RunContext` after its policy is built."""

    @property
    def name(self) -> str:
        return getattr(self, "registered_name", type(self).__name__.lower())

    @property
    def config(self) -> Any:
        """The run's :class:`~siri_bench.config.ExperimentConfig` (None outside a run)."""
        return self.context.get("config")

    # -- prompts ----------------------------------------------------------------------------
    def prompt_additions(self, ctx: PromptContext) -> list[str]:
        """Text blocks to add to the prompt of this step (empty for plain policies)."""
        return []

    # -- rollouts -----------------------------------------------------------------------------
    def plan_rollouts(self, iteration: int, tasks: Sequence[TaskDraw], state: TrainingState) -> list[EpisodeSpec]:
        """The training episodes of ``iteration``: by default one group of ``train.group_size`` plain
        copies per drawn task. Draw any further task from ``state.task_stream`` (never from another
        random source), so that runs stay reproducible and resumable."""
        from siri_bench.rollout import group_specs

        return group_specs(tasks, run_seed=state.run_seed, iteration=iteration, group_size=state.group_size)

    # -- episodes ---------------------------------------------------------------------------
    def annotate_episode(self, episode: Any) -> None:
        """Add ``memory_scope`` to an episode's row and, for algorithms that carry state across
        episodes, its ``position`` (0-based order in the run; it survives checkpoints through
        :meth:`counter_state`).

        Called by the rollout engine for every finished episode, before :meth:`on_episode_end`.
        """
        extra = getattr(episode, "extra", None)
        if extra is not None:
            extra["memory_scope"] = self.memory_scope
            if self.memory_scope != "none":
                extra["position"] = self.episodes_seen
        self.episodes_seen += 1

    def on_episode_end(self, episode: Any, phase: Phase) -> None:
        """Called once per finished episode (training and evaluation)."""

    # -- rewards, advantages, losses -----------------------------------------------------------
    def shape_rewards(self, steps: pd.DataFrame, episodes: Sequence[EpisodeRecord]) -> pd.DataFrame:
        """The step table with a changed ``reward`` column (e.g. plus an intrinsic reward). Default: as is."""
        return steps

    def estimator_params(self) -> dict[str, Any]:
        """Keyword arguments of the configured estimator (``Config.estimator``), with the run's
        ``policy.invalid_action_penalty`` as ``invalid_penalty``."""
        penalty = float(self.config.policy.invalid_action_penalty) if self.config is not None else 0.0
        return self.params.estimator_params(invalid_penalty=penalty)  # type: ignore[attr-defined]

    def advantages(self, steps: pd.DataFrame) -> np.ndarray:
        """One advantage per row of the step table (aligned with its rows)."""
        from algorithms import estimators

        name = getattr(type(self.params), "estimator", "")
        if not name:
            raise NotImplementedError(f"algorithm {self.name!r} trains but names no estimator: set Config.estimator "
                                      "or override advantages()")
        return estimators.compute(name, steps, **self.estimator_params())

    def base_loss_rows(self, steps: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the step rows that enter the base PPO-clip loss (default: every row)."""
        import numpy as np

        return np.ones(len(steps), dtype=bool)

    def loss_terms(self, batch: LossBatch, policy: Any) -> dict[str, Any]:
        """Extra loss terms (scalar tensors with grad) of one micro-batch, added to the base loss.

        Each value must be this micro-batch's *share* of the term over the whole optimizer step, so
        that summing over micro-batches gives the term (normalise by totals over ``batch.minibatch``,
        e.g. ``losses.weighted_nll(..., weight_total=...)``). Logged as ``loss/<name>``.
        """
        return {}

    def on_iteration_end(self, state: TrainingState) -> dict[str, Any]:
        """After the update and weight sync of ``state.iteration``; returns extra metrics."""
        return {}

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, ctx: Any, iteration: int, split: str | None = None) -> pd.DataFrame:
        """One evaluation round of the run context ``ctx`` (on ``split``, default the eval split);
        returns the round's episode rows."""
        from siri_bench.evaluate import run_evaluation

        return run_evaluation(ctx, iteration, split=split)

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (nothing for a stateless algorithm). Algorithms that carry state
        across episodes include ``episodes_seen`` (see :meth:`counter_state`), so that positions
        continue after a resume."""
        return {}

    def counter_state(self) -> dict[str, Any]:
        return {"episodes_seen": self.episodes_seen}

    def load_evaluation_state(self, source: Any, checkpoint: Any = None) -> None:
        """Start a separate evaluation (``siri-bench evaluate``) of the run folder ``source`` (a
        :class:`~siri_bench.store.RunDir`) from the state the run had at ``checkpoint`` (its folder, or
        None for an evaluation-only run): by default the checkpoint's ``algorithm.pt``, so that skill
        banks reach the prompts of the evaluated policy. Algorithms that keep their state elsewhere
        in the run folder (MemRL's memory) override this."""
        if checkpoint is not None:
            from siri_bench.training.checkpoint import load_algorithm_state

            load_algorithm_state(Path(checkpoint), self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.episodes_seen = int(state.pop("episodes_seen", 0))
        if state:
            raise ValueError(f"{type(self).__name__} has no state but got keys {sorted(state)}")

"""The algorithm interface every registered algorithm implements.

An algorithm is one class in one module (CleanRL style): its parameters are one pydantic model
``Config`` at the top of the module (documented fields, unknown keys rejected), and the class
overrides the hooks it needs. The harness (rollout engine, trainer loop, evaluation runner)
never branches on an algorithm's name; it only calls these hooks:

* :meth:`Algorithm.prompt_additions` - text an algorithm adds to the policy's prompt (memories,
  skills, reflections). Additions are recorded per step, so an evaluation can prove that an
  algorithm added nothing (SIRI's plain inference).
* :meth:`Algorithm.on_episode_end` - see every finished episode (memory and skill banks).
* training hooks (defined by the RL core): advantages, loss, iteration end.
* :meth:`Algorithm.setup` - called once the run's policy exists (algorithms whose memory or skill
  writer is the run's own policy keep a reference to the run context).
* :meth:`Algorithm.evaluate` - one evaluation round; the default is the shared evaluation runner
  (Reflexion overrides it with its sequential trials, MemRL builds its memory first).
* :meth:`Algorithm.state_dict` / :meth:`Algorithm.load_state_dict` - everything that must survive
  a checkpoint (skill banks, memories, counters).

Every finished episode is annotated by :meth:`Algorithm.annotate_episode` with the algorithm's
``memory_scope`` and its ``position`` in the run's order (issue "trustworthy runs": runs whose
algorithm carries state across episodes are not samples of independent episodes, and the order
in which episodes fed that state is part of the result).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from siri_bench.config import StrictModel

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
        self.context = context
        #: episodes seen so far in this run (training and evaluation): the next episode's position
        self.episodes_seen = 0

    def setup(self, run: Any) -> None:
        """Called once with the run's :class:`~siri_bench.trainer.RunContext` after its policy is built."""

    @property
    def name(self) -> str:
        return getattr(self, "registered_name", type(self).__name__.lower())

    # -- prompts ----------------------------------------------------------------------------
    def prompt_additions(self, ctx: PromptContext) -> list[str]:
        """Text blocks to add to the prompt of this step (empty for plain policies)."""
        return []

    # -- episodes ---------------------------------------------------------------------------
    def annotate_episode(self, episode: Any) -> None:
        """Add ``memory_scope`` and ``position`` (0-based order in the run) to an episode's row.

        Called by the rollout engine for every finished episode, before :meth:`on_episode_end`.
        """
        extra = getattr(episode, "extra", None)
        if extra is not None:
            extra["memory_scope"] = self.memory_scope
            extra["position"] = self.episodes_seen
        self.episodes_seen += 1

    def on_episode_end(self, episode: Any, phase: Phase) -> None:
        """Called once per finished episode (training and evaluation)."""

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, run: Any, iteration: int, split: str | None = None) -> Any:
        """One evaluation round of ``run`` (a RunContext); returns the round's episode rows."""
        from siri_bench.evaluate import run_evaluation

        return run_evaluation(run, iteration, split=split)

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (nothing for a stateless algorithm). Algorithms that carry state
        across episodes include ``episodes_seen`` (see :meth:`counter_state`), so that positions
        continue after a resume."""
        return {}

    def counter_state(self) -> dict[str, Any]:
        return {"episodes_seen": self.episodes_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.episodes_seen = int(state.pop("episodes_seen", 0))
        if state:
            raise ValueError(f"{type(self).__name__} has no state but got keys {sorted(state)}")

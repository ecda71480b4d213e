"""SIRI's success buffer: the newest successful plain episodes of each category, for mining.

Only what a skill writer needs is kept (task sentence, actions, a short first observation), as
JSON-safe rows, so the buffer is saved with every checkpoint.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: characters of the first observation a buffered episode keeps
FIRST_OBSERVATION_CHARS = 600


@dataclass(frozen=True)
class SuccessEpisode:
    """One successful episode as the skill writers see it."""

    episode_id: str
    task_id: str
    category: str
    task: str
    actions: tuple[str, ...]
    first_observation: str
    iteration: int
    return_: float

    @classmethod
    def from_record(cls, episode: Any, category: str) -> SuccessEpisode:
        """From a :class:`~siri_bench.records.EpisodeRecord` (steps included)."""
        first = episode.steps[0].observation if episode.steps else ""
        return cls(episode.episode_id, episode.task_id, category, episode.task,
                   tuple(s.action for s in episode.steps), first[:FIRST_OBSERVATION_CHARS],
                   int(episode.iteration), float(episode.return_))


class SuccessBuffer:
    """Per category, the ``capacity`` newest successful episodes (older ones fall out)."""

    def __init__(self, capacity: int = 64):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.by_category: dict[str, deque[SuccessEpisode]] = {}

    def add(self, episode: SuccessEpisode) -> None:
        self.by_category.setdefault(episode.category, deque(maxlen=self.capacity)).append(episode)

    def count(self, category: str) -> int:
        return len(self.by_category.get(category, ()))

    def counts(self) -> dict[str, int]:
        return {c: len(q) for c, q in sorted(self.by_category.items())}

    def categories(self, min_count: int = 1) -> list[str]:
        """Categories with at least ``min_count`` buffered successes, sorted by name."""
        return sorted(c for c, q in self.by_category.items() if len(q) >= min_count)

    def sample(self, category: str, k: int, seed: int) -> list[SuccessEpisode]:
        """``k`` distinct episodes of ``category`` (all of them if fewer), drawn with ``seed``, oldest first."""
        items: Sequence[SuccessEpisode] = list(self.by_category.get(category, ()))
        if len(items) <= k:
            return list(items)
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(category.encode("utf-8"))])
        chosen = sorted(rng.choice(len(items), size=k, replace=False).tolist())
        return [items[i] for i in chosen]

    def state_dict(self) -> dict[str, Any]:
        return {"capacity": self.capacity,
                "episodes": {c: [asdict(e) for e in q] for c, q in self.by_category.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.by_category = {}
        for rows in state.get("episodes", {}).values():
            for row in rows:
                self.add(SuccessEpisode(**{**row, "actions": tuple(row["actions"])}))

"""MemRL's episodic memory: procedural memories with Q-values, two-stage retrieval, Q updates.

A :class:`Memory` is a compact procedure (or, from a failed episode, what to avoid) written from
one episode, keyed by the episode's task sentence, with a value ``q`` learned from the outcomes
of the episodes that retrieved it.

* **Add** (:meth:`MemoryBank.add`): a new memory whose key is at least ``merge_threshold``
  similar to the key of an existing memory *with the same outcome* is merged into it (its text
  replaced by the newer one, ``merged`` counted, ``q`` kept); otherwise it is added with
  ``q = q_init``.
* **Retrieve** (:meth:`MemoryBank.retrieve`), two stages:
  1. semantic recall: the memories with ``sim(query, key) >= threshold``, the ``recall_k`` most
     similar (ties: older first);
  2. value-aware re-ranking of those candidates by
     ``score = w * z(sim) + (1 - w) * z(q)``, where ``z`` standardises over the candidates
     (population std; a std below 1e-9 counts as 1, so equal values give z = 0) and ``z(q)`` is
     clipped to [-3, 3] (MemRL's implementation); the ``top_k`` best are returned (ties: higher
     similarity first).
* **Update** (:meth:`MemoryBank.update`): for each memory retrieved by an episode with reward
  ``r`` (+1 success, -1 failure by default): ``q <- (1 - alpha) * q + alpha * r`` (gamma = 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from algorithms.retrieval import Similarity, check_similarity


@dataclass
class Memory:
    id: str
    key: str                  # retrieval key: the task sentence of the source episode
    content: str              # the procedural memory
    task_type: str
    outcome: str              # "success" or "failure"
    q: float
    retrievals: int = 0       # times retrieved into a prompt
    updates: int = 0          # Q updates received
    merged: int = 0           # near-duplicates merged into it
    created: int = 0          # run position of the source episode
    source: str = ""          # source episode id


@dataclass(frozen=True)
class Retrieved:
    memory: Memory
    similarity: float
    score: float


def zscores(values: np.ndarray, clip: float | None = None) -> np.ndarray:
    """``(x - mean) / std`` over ``values`` (population std; std < 1e-9 counts as 1), optionally clipped."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    std = float(values.std())
    z = (values - values.mean()) / (std if std > 1e-9 else 1.0)
    return np.clip(z, -clip, clip) if clip is not None else z


class MemoryBank:
    """The memories of one run (see the module docstring)."""

    def __init__(self, similarity: Similarity, *, merge_threshold: float = 0.9, q_init: float = 0.0):
        self.similarity = similarity
        self.merge_threshold = merge_threshold
        self.q_init = q_init
        self.memories: list[Memory] = []
        self._next_id = 0

    def __len__(self) -> int:
        return len(self.memories)

    def by_id(self) -> dict[str, Memory]:
        return {m.id: m for m in self.memories}

    # -- add --------------------------------------------------------------------------------
    def add(self, key: str, content: str, *, task_type: str = "", outcome: str = "success", created: int = 0,
            source: str = "") -> tuple[Memory, bool]:
        """Add a memory, or merge it into a near-duplicate; returns (the memory, merged?)."""
        same = [m for m in self.memories if m.outcome == outcome]
        if same:
            sims = self.similarity.scores([key], [m.key for m in same])[0]
            best = int(np.argmax(sims))
            if float(sims[best]) >= self.merge_threshold:
                target = same[best]
                target.content = content
                target.merged += 1
                target.source = source or target.source
                return target, True
        memory = Memory(id=f"m{self._next_id:05d}", key=key, content=content, task_type=task_type, outcome=outcome,
                        q=float(self.q_init), created=created, source=source)
        self._next_id += 1
        self.memories.append(memory)
        return memory, False

    # -- retrieve ---------------------------------------------------------------------------
    def retrieve(self, query: str, *, threshold: float, recall_k: int, top_k: int, sim_weight: float = 0.5,
                 q_clip: float | None = 3.0, count: bool = True) -> list[Retrieved]:
        """Two-stage retrieval (see the module docstring); ``count`` adds 1 to each result's ``retrievals``."""
        if not self.memories:
            return []
        sims = self.similarity.scores([query], [m.key for m in self.memories])[0]
        order = sorted((i for i in range(len(sims)) if sims[i] >= threshold), key=lambda i: (-sims[i], i))
        candidates = order[:recall_k]
        if not candidates:
            return []
        cand_sims = np.array([sims[i] for i in candidates])
        cand_q = np.array([self.memories[i].q for i in candidates])
        scores = sim_weight * zscores(cand_sims) + (1.0 - sim_weight) * zscores(cand_q, q_clip)
        ranked = sorted(range(len(candidates)), key=lambda j: (-scores[j], -cand_sims[j], candidates[j]))[:top_k]
        out = [Retrieved(self.memories[candidates[j]], float(cand_sims[j]), float(scores[j])) for j in ranked]
        if count:
            for r in out:
                r.memory.retrievals += 1
        return out

    # -- update -----------------------------------------------------------------------------
    def update(self, memory_ids: Iterable[str], reward: float, alpha: float) -> int:
        """``q <- (1 - alpha) q + alpha reward`` for each id (once per id); returns how many were updated."""
        index = self.by_id()
        updated = 0
        for mid in dict.fromkeys(memory_ids):
            m = index.get(mid)
            if m is None:          # merged away or never stored: nothing to credit
                continue
            m.q = (1.0 - alpha) * m.q + alpha * float(reward)
            m.updates += 1
            updated += 1
        return updated

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"memories": [asdict(m) for m in self.memories], "next_id": self._next_id,
                "similarity": self.similarity.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_similarity(state.get("similarity"), self.similarity.name, "memory")
        self.memories = [Memory(**m) for m in state.get("memories", [])]
        self._next_id = int(state.get("next_id", len(self.memories)))

    def summary(self) -> dict[str, float]:
        qs = [m.q for m in self.memories]
        return {"memory/size": len(self.memories),
                "memory/success": sum(m.outcome == "success" for m in self.memories),
                "memory/q_mean": float(np.mean(qs)) if qs else 0.0}


def memories_text(retrieved: Sequence[Retrieved]) -> str:
    """The prompt block of retrieved memories."""
    lines = ["Relevant experience from memory (from similar earlier tasks; follow what worked, avoid what failed):"]
    for k, r in enumerate(retrieved, 1):
        m = r.memory
        label = "succeeded" if m.outcome == "success" else "failed"
        lines.append(f"[{k}] Task: {m.key} ({label})\n{m.content}")
    return "\n".join(lines)

"""D2Skill's dual-granularity skill bank: task skills and step skills with utilities.

Both pools hold :class:`~algorithms.skills.Skill` objects with a retrieval key (task skills: the
task sentence; step skills: ``task + "\\n\\nCurrent observation: " + observation`` of the step
where a failed episode went wrong), a utility ``u`` and a count ``n`` of utility updates.

**Retrieval** (:meth:`D2SkillBank.retrieve`, D2Skill's SimUtil-UCB) of ``top_k`` skills of a pool
for a query:

1. the ``top_2k`` keys most similar to the query (ties: older first);
2. each gets ``score = alpha * sim_norm + (1 - alpha) * (u + c * sqrt(ln(max(2, 1 + N)) / (1 + n)))``
   with ``sim_norm = (sim + 1) / 2`` (cosine mapped to [0, 1]), ``N`` the sum of ``n`` over the
   pool; the ``top_k`` highest scores are kept (ties: higher similarity, then older);
3. of those, the ones with ``sim >= threshold`` are returned.

``ln(max(2, 1 + N))`` is D2Skill's ranking code: the exploration bonus is positive before any
update (for N >= 1 it is the textbook ``ln(1 + N)``).

**Utilities** (:meth:`D2SkillBank.update`): ``u <- (1 - beta) u + beta * credit``, ``n += 1``,
``last_retrieved = iteration``.

**Eviction** (:meth:`D2SkillBank.evict`): a pool over its cap loses its lowest
``u + c * sqrt(ln(1 + N) / (1 + n))`` skills (N = 0: no bonus), except skills created or updated
within the last ``protect`` iterations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from algorithms.retrieval import check_similarity
from algorithms.skills import Skill, dedupe

if TYPE_CHECKING:
    from algorithms.retrieval import Similarity

POOLS = ("task", "step")


@dataclass(frozen=True)
class ScoredSkill:
    skill: Skill
    similarity: float
    score: float


def ucb_bonus(c: float, total: int, n: int, *, floor_two: bool = True) -> float:
    """``c * sqrt(ln(max(2, 1 + N)) / (1 + n))`` (``floor_two=False``: ``ln(1 + N)``)."""
    log_n = math.log(max(2, 1 + total)) if floor_two else math.log(1 + total)
    return c * math.sqrt(log_n / (1 + n)) if log_n > 0 else 0.0


def retrieval_score(sim: float, utility: float, total: int, n: int, *, alpha: float, c: float) -> float:
    """``alpha * (sim + 1) / 2 + (1 - alpha) * (utility + UCB bonus)``."""
    return alpha * (sim + 1.0) / 2.0 + (1.0 - alpha) * (utility + ucb_bonus(c, total, n))


def retrieval_text(skill: Skill) -> str:
    """What a query is compared with: the skill's key, else (a loaded skill without one) its title,
    principle and when-to-apply joined, as D2Skill does for skills without a retrieval observation."""
    return skill.key or ". ".join(x for x in (skill.title, skill.principle, skill.when_to_apply) if x)


class D2SkillBank:
    def __init__(self, similarity: Similarity):
        self.similarity = similarity
        self.pools: dict[str, list[Skill]] = {p: [] for p in POOLS}
        self._next = {p: 1 for p in POOLS}

    def __len__(self) -> int:
        return sum(len(v) for v in self.pools.values())

    def by_id(self) -> dict[str, Skill]:
        return {s.id: s for pool in self.pools.values() for s in pool}

    def add(self, skills: Iterable[Skill], pool: str, *, iteration: int = 0) -> list[Skill]:
        """Add skills to ``pool`` (duplicates by content skipped); returns those added."""
        added = []
        for s in dedupe(list(skills), self.pools[pool]):
            s.kind, s.created_at, s.last_retrieved = pool, iteration, iteration
            s.id = f"{pool}_{self._next[pool]:03d}"
            self._next[pool] += 1
            self.pools[pool].append(s)
            added.append(s)
        return added

    def retrieve(self, pool: str, query: str, *, top_k: int, top_2k: int | None = None, alpha: float = 0.1,
                 c: float = 0.05, threshold: float | None = None) -> list[ScoredSkill]:
        items = self.pools[pool]
        if not items or top_k <= 0:
            return []
        sims = self.similarity.scores([query], [retrieval_text(s) for s in items])[0]
        width = min(len(items), top_2k if top_2k is not None else max(2 * top_k, top_k + 1))
        first = sorted(range(len(items)), key=lambda i: (-sims[i], i))[:width]
        total = sum(s.retrievals for s in items)
        scored = [ScoredSkill(items[i], float(sims[i]),
                              retrieval_score(float(sims[i]), items[i].utility, total, items[i].retrievals, alpha=alpha, c=c))
                  for i in first]
        ranked = sorted(enumerate(scored), key=lambda t: (-t[1].score, -t[1].similarity, first[t[0]]))
        out = [s for _, s in ranked[:top_k]]
        return [s for s in out if threshold is None or s.similarity >= threshold]

    def update(self, skill_ids: Iterable[str], credit: float, beta: float, iteration: int) -> int:
        index = self.by_id()
        updated = 0
        for sid in dict.fromkeys(skill_ids):
            s = index.get(sid)
            if s is None:
                continue
            s.utility = (1.0 - beta) * s.utility + beta * float(credit)
            s.retrievals += 1
            s.last_retrieved = iteration
            updated += 1
        return updated

    def evict(self, pool: str, cap: int, iteration: int, *, protect: int = 10, c: float = 0.05) -> list[Skill]:
        """Remove the lowest-value unprotected skills of ``pool`` beyond ``cap``; returns them."""
        items = self.pools[pool]
        excess = len(items) - cap
        if excess <= 0:
            return []
        total = sum(s.retrievals for s in items)
        cutoff = iteration - protect
        candidates = [(s.utility + ucb_bonus(c, total, s.retrievals, floor_two=False), i) for i, s in enumerate(items)
                      if max(s.created_at, s.last_retrieved) <= cutoff]
        drop = {i for _, i in sorted(candidates)[:excess]}
        removed = [s for i, s in enumerate(items) if i in drop]
        self.pools[pool] = [s for i, s in enumerate(items) if i not in drop]
        return removed

    def state_dict(self) -> dict[str, Any]:
        return {"pools": {p: [s.to_dict() for s in v] for p, v in self.pools.items()}, "next": dict(self._next),
                "similarity": self.similarity.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_similarity(state.get("similarity"), self.similarity.name, "skill bank")
        self.pools = {p: [Skill.from_dict(d) for d in (state.get("pools") or {}).get(p, [])] for p in POOLS}
        self._next = {p: int((state.get("next") or {}).get(p, len(self.pools[p]) + 1)) for p in POOLS}

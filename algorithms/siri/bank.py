"""SIRI's skill bank: the skills of each category, their utility and their lifecycle.

A skill is born a ``candidate`` with utility U = 0 and n = 0 validations. Each paired validation
gives a gain d; the utility is an exponential moving average ``U <- (1 - beta) U + beta d`` and
``n <- n + 1``. Then, in this order:

* ``candidate -> active`` when ``n >= min_validations`` and ``U >= promote_threshold``;
* ``candidate | active -> retired`` when ``n >= min_validations`` and ``U < retire_threshold``;
* when a category has more than ``max_active`` active skills, the one with the lowest U is retired
  (ties: the oldest goes).

Retired skills stay in the bank (and the log) and are never used again; they still take part in
deduplication, so a skill that failed validation is not mined and validated again. New skills
whose normalised steps text is near-identical to an existing skill of the category (rapidfuzz
ratio above ``dedup_threshold``) are dropped. ``max_candidates`` caps the candidates awaiting
validation per category.

With ``validation=False`` (the ablation) a new skill is promoted at once with U = 1 and never
validated; only the ``max_active`` eviction retires skills.

Every change is an *event* (a dict): ``created``, ``validated`` (gain, utility, n), ``promoted``,
``retired`` (reason), each with ``skill_id``, ``category`` and ``iteration``. The algorithm writes
them to the run's ``skills.jsonl``. :meth:`SkillBank.state_dict` holds everything (JSON-safe) for
checkpoints.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from algorithms.siri.validation import ema

Status = Literal["candidate", "active", "retired"]
STATUSES: tuple[str, ...] = ("candidate", "active", "retired")


@dataclass
class Skill:
    """One skill: what the prompt shows (title, when, steps) and its validation record."""

    skill_id: str
    category: str
    title: str
    when: str
    steps: list[str]
    created_iteration: int
    source: str = ""                    # the writer that made it (self, external, template)
    status: Status = "candidate"
    utility: float = 0.0
    n: int = 0
    gains: list[float] = field(default_factory=list)
    promoted_iteration: int | None = None
    retired_iteration: int | None = None
    retire_reason: str = ""

    @property
    def usable(self) -> bool:
        return self.status != "retired"

    def text(self) -> str:
        """The skill as a prompt block (what a skill-augmented rollout sees)."""
        lines = [f"Skill: {self.title}", f"When to use: {self.when}", "Steps:"]
        lines += [f"{i}. {step}" for i, step in enumerate(self.steps, start=1)]
        return "\n".join(lines)


def normalise_text(text: str) -> str:
    """Lower case, numbers as '#', punctuation dropped, whitespace collapsed (for deduplication)."""
    text = re.sub(r"\d+", "#", text.lower())
    text = re.sub(r"[^\w#\s]", " ", text)
    return " ".join(text.split())


def text_similarity(a: str, b: str) -> float:
    """Similarity in [0, 1] of two normalised texts: 1 - Indel distance / (len a + len b)."""
    from rapidfuzz import fuzz

    return float(fuzz.ratio(normalise_text(a), normalise_text(b))) / 100.0


def dedup_text(steps: Sequence[str]) -> str:
    """What deduplication compares: the steps (titles differ freely while the procedure is the same)."""
    return "\n".join(steps)


@dataclass(frozen=True)
class BankSettings:
    """The lifecycle parameters (the fields of the same names in ``SIRIConfig``)."""

    beta: float = 0.3
    min_validations: int = 3
    promote_threshold: float = 0.05
    retire_threshold: float = 0.0
    max_active: int = 8
    max_candidates: int = 2
    dedup_threshold: float = 0.9
    validation: bool = True

    @classmethod
    def from_params(cls, params: Any) -> BankSettings:
        return cls(**{k: getattr(params, k) for k in cls.__dataclass_fields__})


class SkillBank:
    """Skills by id, the lifecycle rules and the pending event log (see the module docstring)."""

    def __init__(self, settings: BankSettings | None = None):
        self.settings = settings or BankSettings()
        self.skills: dict[str, Skill] = {}
        self.next_id = 0
        self.pending_events: list[dict[str, Any]] = []
        self.dropped_duplicates = 0

    # -- queries ----------------------------------------------------------------------------------
    def of_category(self, category: str, status: str | Iterable[str] | None = None) -> list[Skill]:
        """Skills of ``category`` (optionally of the given status(es)), oldest first."""
        wanted = None if status is None else ({status} if isinstance(status, str) else set(status))
        return [s for s in self.skills.values() if s.category == category and (wanted is None or s.status in wanted)]

    def active(self, category: str) -> list[Skill]:
        """Active skills of ``category``, highest utility first (ties: oldest first)."""
        return sorted(self.of_category(category, "active"), key=lambda s: -s.utility)

    def counts(self) -> dict[str, dict[str, int]]:
        """{category: {status: count}}."""
        out: dict[str, dict[str, int]] = {}
        for s in self.skills.values():
            out.setdefault(s.category, dict.fromkeys(STATUSES, 0))[s.status] += 1
        return out

    def can_add(self, category: str) -> bool:
        """Whether a new skill of ``category`` may enter (the candidate cap)."""
        if not self.settings.validation:
            return True
        return len(self.of_category(category, "candidate")) < self.settings.max_candidates

    def duplicate_of(self, category: str, steps: Sequence[str]) -> Skill | None:
        """The first skill of ``category`` (any status) whose steps text is too similar to ``steps``."""
        new = dedup_text(steps)
        for s in self.of_category(category):
            if text_similarity(new, dedup_text(s.steps)) > self.settings.dedup_threshold:
                return s
        return None

    def to_validate(self, limit: int) -> list[Skill]:
        """Up to ``limit`` skills to validate next: candidates before active skills, fewest validations
        first, then oldest (none without validation)."""
        if not self.settings.validation:
            return []
        usable = [s for s in self.skills.values() if s.usable]
        order = sorted(usable, key=lambda s: (s.status != "candidate", s.n, int(s.skill_id.rsplit("-", 1)[-1])))
        return order[:limit]

    # -- changes ----------------------------------------------------------------------------------
    def _event(self, event: str, skill: Skill, iteration: int, **extra: Any) -> dict[str, Any]:
        row = {"event": event, "skill_id": skill.skill_id, "category": skill.category, "iteration": int(iteration),
               "status": skill.status, "utility": float(skill.utility), "n": int(skill.n), **extra}
        self.pending_events.append(row)
        return row

    def add(self, category: str, title: str, when: str, steps: Sequence[str], iteration: int,
            source: str = "") -> Skill | None:
        """Add a mined skill as a candidate (or, without validation, as active); None if it is a
        near-duplicate (counted in ``dropped_duplicates``). Call :meth:`can_add` first."""
        steps = [s for s in (str(x).strip() for x in steps) if s]
        if not steps:
            raise ValueError("a skill needs at least one step")
        if self.duplicate_of(category, steps) is not None:
            self.dropped_duplicates += 1
            return None
        skill = Skill(f"skill-{self.next_id:04d}", category, title.strip(), when.strip(), steps, iteration, source)
        self.next_id += 1
        self.skills[skill.skill_id] = skill
        self._event("created", skill, iteration, source=source, title=skill.title, when=skill.when,
                    steps=list(skill.steps), text=skill.text())
        if not self.settings.validation:
            skill.utility = 1.0
            self._promote(skill, iteration)
        return skill

    def validate(self, skill_id: str, gain: float, iteration: int, **details: Any) -> Skill:
        """Record one paired gain d: U <- (1 - beta) U + beta d, n <- n + 1, then the lifecycle rules."""
        skill = self.skills[skill_id]
        if not skill.usable:
            raise ValueError(f"{skill_id} is retired; retired skills are never validated again")
        skill.utility = ema(skill.utility, gain, self.settings.beta)
        skill.n += 1
        skill.gains.append(float(gain))
        self._event("validated", skill, iteration, gain=float(gain), **details)
        s = self.settings
        if skill.n >= s.min_validations:
            if skill.status == "candidate" and skill.utility >= s.promote_threshold:
                self._promote(skill, iteration)
            elif skill.utility < s.retire_threshold:
                self._retire(skill, iteration, "utility")
        return skill

    def _promote(self, skill: Skill, iteration: int) -> None:
        skill.status = "active"
        skill.promoted_iteration = iteration
        self._event("promoted", skill, iteration)
        self._evict(skill.category, iteration)

    def _retire(self, skill: Skill, iteration: int, reason: str) -> None:
        skill.status = "retired"
        skill.retired_iteration = iteration
        skill.retire_reason = reason
        self._event("retired", skill, iteration, reason=reason)

    def _evict(self, category: str, iteration: int) -> None:
        active = self.of_category(category, "active")
        while len(active) > self.settings.max_active:
            lowest = min(active, key=lambda s: s.utility)     # min keeps the first (oldest) of ties
            self._retire(lowest, iteration, "max_active")
            active.remove(lowest)

    def take_events(self) -> list[dict[str, Any]]:
        """The events since the last call (to be appended to ``skills.jsonl``)."""
        events, self.pending_events = self.pending_events, []
        return events

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"skills": [asdict(s) for s in self.skills.values()], "next_id": self.next_id,
                "dropped_duplicates": self.dropped_duplicates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.skills = {row["skill_id"]: Skill(**row) for row in state.get("skills", [])}
        self.next_id = int(state.get("next_id", len(self.skills)))
        self.dropped_duplicates = int(state.get("dropped_duplicates", 0))
        self.pending_events = []

"""Skills as the skill-bank baselines store them (SkillRL, D2Skill): a title, a principle and when
to apply it, plus the bookkeeping each bank needs, and the parsing of model-written skill lists.

A skill parsed from a writer must have a title and a principle that read as language; anything
else is dropped and counted (:func:`parse_skills` returns how many were dropped).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from algorithms.model_output import json_objects, looks_like_language, text_field


@dataclass
class Skill:
    id: str
    title: str
    principle: str
    when_to_apply: str = ""
    kind: str = "general"         # general | task | mistake (SkillRL); task | step (D2Skill)
    category: str = ""            # SkillRL task-specific skills: the task type
    key: str = ""                 # D2Skill: the retrieval text (task, or task + observation)
    utility: float = 0.0          # D2Skill: EMA of the paired credit
    retrievals: int = 0           # D2Skill: utility updates received (the UCB's n)
    last_retrieved: int = 0       # D2Skill: iteration of the last update
    created_at: int = 0           # iteration the skill was added
    source: str = ""              # "initial", "writer", "validation", ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Skill:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def fingerprint(self) -> str:
        """Normalised content (title, principle, when, key): equal fingerprints are duplicates."""
        return "\x00".join(re.sub(r"\s+", " ", str(x).strip().lower())
                           for x in (self.key, self.title, self.principle, self.when_to_apply))

    def line(self) -> str:
        """The skill as one prompt line."""
        if self.kind == "mistake":
            text = f"- Don't: {self.title}"
            return text + (f" Instead: {self.principle}" if self.principle else "")
        text = f"- {self.title}: {self.principle}"
        return text + (f" (when: {self.when_to_apply})" if self.when_to_apply and self.kind == "task" else "")


def skill_from_object(obj: dict[str, Any], kind: str, *, max_chars: int = 300) -> Skill | None:
    """A skill from one JSON object a writer produced (None when it lacks readable text).

    Accepts SkillRL's fields (``title``, ``principle``, ``when_to_apply``) and, for mistakes,
    ``description`` / ``how_to_avoid``."""
    if kind == "mistake":
        title = text_field(obj, "description", "title", max_chars=max_chars)
        principle = text_field(obj, "how_to_avoid", "principle", max_chars=max_chars)
    else:
        title = text_field(obj, "title", "name", max_chars=120)
        principle = text_field(obj, "principle", "description", "content", max_chars=max_chars)
    when = text_field(obj, "when_to_apply", "when", max_chars=max_chars)
    if not title or not principle or not looks_like_language(f"{title} {principle}", min_words=4):
        return None
    return Skill(id="", title=title, principle=principle, when_to_apply=when, kind=kind)


def parse_skills(text: str, kind: str = "general", *, max_skills: int | None = None) -> tuple[list[Skill], int]:
    """Skills in a writer's output (JSON objects or arrays anywhere in it); returns (skills, dropped)."""
    objects = json_objects(text or "")
    skills, dropped = [], 0
    for obj in objects:
        skill = skill_from_object(obj, kind)
        if skill is None:
            dropped += 1
        else:
            skills.append(skill)
    if not objects:
        dropped = 1                      # nothing parseable at all counts as one dropped output
    if max_skills is not None and len(skills) > max_skills:
        skills = skills[:max_skills]
    return skills, dropped


def dedupe(skills: list[Skill], existing: list[Skill] = ()) -> list[Skill]:  # type: ignore[assignment]
    """``skills`` without duplicates of each other or of ``existing`` (same fingerprint)."""
    seen = {s.fingerprint() for s in existing}
    out = []
    for s in skills:
        fp = s.fingerprint()
        if fp not in seen:
            seen.add(fp)
            out.append(s)
    return out

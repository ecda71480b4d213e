"""SkillRL's skill bank: general skills, task-specific skills per task type, common mistakes, and
the skills added during training from failed validation episodes.

The JSON form is SkillRL's (``general_skills``, ``task_specific_skills: {type: [...]}``,
``common_mistakes``), so a bank written for SkillRL loads as is; a mistake's ``description`` /
``how_to_avoid`` become its title / principle.

Retrieval (SkillRL's two modes):

* ``template`` - every task-specific skill of the task's type (``task_top_k`` caps them), then the
  evolved skills, then the first static general skills up to ``top_k`` general skills in all;
  the first 5 common mistakes. SkillRL detects the type with keyword rules on the task text;
  the env here gives the type (``info["task_type"]``).
* ``embedding`` - the ``top_k`` general skills (evolved ones included) and the ``task_top_k``
  task-specific skills (across all types) most similar to the task sentence; the first 5 mistakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from algorithms.skills import Skill, dedupe

if TYPE_CHECKING:
    from algorithms.retrieval import Similarity

MISTAKES_SHOWN = 5


@dataclass
class SkillSelection:
    general: list[Skill] = field(default_factory=list)
    task: list[Skill] = field(default_factory=list)
    mistakes: list[Skill] = field(default_factory=list)

    def ids(self) -> list[str]:
        return [s.id for s in self.general + self.task + self.mistakes]

    def __bool__(self) -> bool:
        return bool(self.general or self.task or self.mistakes)


class SkillRLBank:
    def __init__(self) -> None:
        self.general: list[Skill] = []
        self.task_specific: dict[str, list[Skill]] = {}
        self.mistakes: list[Skill] = []
        self.evolved: list[Skill] = []          # added from validation failures (SkillRL's dyn_NNN)

    def __len__(self) -> int:
        return len(self.general) + sum(len(v) for v in self.task_specific.values()) + len(self.mistakes) + \
            len(self.evolved)

    def all_skills(self) -> list[Skill]:
        return self.general + [s for v in self.task_specific.values() for s in v] + self.mistakes + self.evolved

    # -- building ---------------------------------------------------------------------------
    def add(self, skills: Sequence[Skill], *, category: str = "", iteration: int = 0, source: str = "writer") -> list[Skill]:
        """Add skills of any kind (duplicates of existing ones are skipped); returns those added."""
        added = []
        for skill in dedupe(list(skills), self.all_skills()):
            skill.created_at, skill.source = iteration, source
            if skill.kind == "mistake":
                skill.id = f"err_{len(self.mistakes) + 1:03d}"
                self.mistakes.append(skill)
            elif skill.kind == "task":
                skill.category = skill.category or category
                pool = self.task_specific.setdefault(skill.category, [])
                skill.id = f"{skill.category}_{len(pool) + 1:03d}"
                pool.append(skill)
            elif source == "validation":
                skill.kind = "general"
                skill.id = f"dyn_{len(self.evolved) + 1:03d}"
                self.evolved.append(skill)
            else:
                skill.kind = "general"
                skill.id = f"gen_{len(self.general) + 1:03d}"
                self.general.append(skill)
            added.append(skill)
        return added

    # -- retrieval --------------------------------------------------------------------------
    def retrieve_template(self, task_type: str, *, top_k: int = 6, task_top_k: int | None = None,
                          with_evolved: bool = True) -> SkillSelection:
        evolved = list(self.evolved) if with_evolved else []
        general = evolved + self.general[: max(0, top_k - len(evolved))]
        task = list(self.task_specific.get(task_type, []))
        if task_top_k is not None:
            task = task[:task_top_k]
        return SkillSelection(general, task, self.mistakes[:MISTAKES_SHOWN])

    def retrieve_embedding(self, task: str, similarity: Similarity, *, top_k: int = 6, task_top_k: int | None = None,
                           with_evolved: bool = True) -> SkillSelection:
        general = self.general + (self.evolved if with_evolved else [])
        specific = [s for v in self.task_specific.values() for s in v]
        return SkillSelection(_top(task, general, similarity, top_k),
                              _top(task, specific, similarity, task_top_k if task_top_k is not None else top_k),
                              self.mistakes[:MISTAKES_SHOWN])

    # -- JSON -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"general_skills": [s.to_dict() for s in self.general],
                "task_specific_skills": {k: [s.to_dict() for s in v] for k, v in self.task_specific.items()},
                "common_mistakes": [s.to_dict() for s in self.mistakes],
                "evolved_skills": [s.to_dict() for s in self.evolved]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SkillRLBank:
        """A bank from SkillRL's JSON (or :meth:`to_json`'s)."""
        bank = cls()

        def skill(obj: dict[str, Any], kind: str, category: str = "") -> Skill:
            if kind == "mistake" and "description" in obj:
                obj = {**obj, "title": obj.get("description", ""), "principle": obj.get("how_to_avoid", ""),
                       "id": obj.get("mistake_id", obj.get("id", ""))}
            s = Skill.from_dict({**obj, "id": obj.get("skill_id", obj.get("id", ""))})
            s.kind, s.category = kind, category or s.category
            return s

        bank.general = [skill(o, "general") for o in data.get("general_skills") or []]
        bank.task_specific = {k: [skill(o, "task", k) for o in v] for k, v in (data.get("task_specific_skills") or {}).items()}
        bank.mistakes = [skill(o, "mistake") for o in data.get("common_mistakes") or []]
        bank.evolved = [skill(o, "general") for o in data.get("evolved_skills") or []]
        # SkillRL keeps evolved skills among the general ones, with dyn_ ids
        bank.evolved += [s for s in bank.general if s.id.startswith("dyn_")]
        bank.general = [s for s in bank.general if not s.id.startswith("dyn_")]
        return bank


def _top(query: str, skills: list[Skill], similarity: Similarity, k: int) -> list[Skill]:
    if not skills or k <= 0:
        return []
    texts = [". ".join(x for x in (s.title, s.principle, s.when_to_apply) if x) for s in skills]
    sims = similarity.scores([query], texts)[0]
    order = sorted(range(len(skills)), key=lambda i: (-sims[i], i))[:k]
    return [skills[i] for i in order]


def selection_text(sel: SkillSelection, task_type: str = "") -> str:
    """The prompt block of selected skills (SkillRL's sections)."""
    sections = []
    if sel.general:
        sections.append("General principles:\n" + "\n".join(s.line() for s in sel.general))
    if sel.task:
        name = task_type.replace("_", " ") if task_type else "this task"
        sections.append(f"Skills for {name} tasks:\n" + "\n".join(s.line() for s in sel.task))
    if sel.mistakes:
        sections.append("Mistakes to avoid:\n" + "\n".join(s.line() for s in sel.mistakes))
    return "Skills from the skill bank:\n" + "\n\n".join(sections)

"""D2Skill-style dual-granularity skills + GRPO (TU2021/D2Skill-AgenticRL, arXiv 2603.28716).

* **Bank** (:mod:`algorithms.d2skill_bank`): task skills (retrieved once per episode by the task
  sentence, ``top_k_task``) and step skills (retrieved at every step by the task plus the current
  observation, ``top_k_step``), ranked by ``alpha * sim_norm + (1 - alpha) * (u + UCB)`` over the
  ``top_2k`` most similar, kept when ``sim >= threshold``. The bank starts empty.
* **Paired split.** In every GRPO group the first ``round(G * ab_ratio)`` members get the skills
  (``variant = "skill"``), the others do not (``plain``); both halves stay one GRPO group.
* **Utilities** (after each iteration, per group g): ``baseline_g`` = mean success of the plain
  half; the task skills used by the skill half get credit ``mean success(skill half) -
  baseline_g``; the step skills used by skill episode i get ``success_i - baseline_g``; each skill
  ``u <- (1 - beta) u + beta * credit`` (``n += 1``).
* **Intrinsic reward** (:meth:`D2Skill.shape_rewards`): every episode's last step gets
  ``intrinsic_coef * (success_i - baseline_g)`` on top of the training reward.
* **New skills.** From groups whose success rate is below ``reflect_threshold``, up to
  ``max_reflections`` failed episodes (each with a successful episode of its group as reference
  when there is one) go to the writer, which names the first wrong step and writes one step skill
  (keyed by the task and the observation of that step) and one task skill (keyed by the task)
  (:data:`REFLECT_PROMPT`). Unparseable output is dropped and counted.
* **Eviction.** Every ``evict_every`` iterations a pool over its cap (``max_task_skills``,
  ``max_step_skills``) loses its lowest ``u + c * ucb`` skills, except those created or updated
  in the last ``protect_recent`` iterations.
* **Inference.** Every evaluation episode gets skills (D2Skill's validation always uses them).

The bank is part of the checkpoint; every change is an event in ``skills.jsonl``.

Differences from D2Skill: retrieval is in-process (MiniLM or BM25 instead of a Qwen3-Embedding
server), so the threshold 0.7 is on another model's scale; the writer is the run's own policy
unless ``writer.kind: openai`` (D2Skill: o3 or a served model); eviction protects skills *updated*
recently as well as new ones (D2Skill's code protects by creation only); the reflection prompt is
this project's wording.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from algorithms.base import PromptContext
from algorithms.d2skill_bank import D2SkillBank, ScoredSkill
from algorithms.grpo import GRPO, GRPOConfig
from algorithms.model_output import after_label, json_objects
from algorithms.retrieval import SimilarityKind, build_similarity
from algorithms.skills import Skill, skill_from_object
from algorithms.trajectories import render_trajectory
from algorithms.writers import Writer, WriterConfig, WriterRequest, WriterStats, build_writer
from siri_bench.registry import register_algorithm

if TYPE_CHECKING:  # import-light: configs validate without numpy or pandas
    import pandas as pd

    from algorithms.retrieval import Similarity
    from siri_bench.rollout import EpisodeSpec

log = logging.getLogger(__name__)

REFLECT_PROMPT_VERSION = "d2skill.reflect/v1"
REFLECT_PROMPT = """Analyze this failed agent episode{reference_note} and produce three outputs.

Task: {task}
Task type: {task_type}

Failed episode:
{failed}
{reference}
Output, with these exact labels:
FIRST_ERROR_STEP: N   (the 1-based step where the agent first went wrong; 0 if unclear)

STEP_REFLECTION:
one JSON object with "title", "principle" and "when_to_apply": what to do at that step

TASK_REFLECTION:
one JSON object with "title", "principle" and "when_to_apply": how to succeed in this kind of task"""

TEMPLATE_REFLECT = ('FIRST_ERROR_STEP: 1\nSTEP_REFLECTION:\n{{"title": "Act on what you see", "principle": '
                    '"Use the object in front of you before moving on to another place.", "when_to_apply": '
                    '"An object the task needs is here"}}\nTASK_REFLECTION:\n{{"title": "Plan the {task_type} task", '
                    '"principle": "Find what the task needs first, then finish the task in order.", '
                    '"when_to_apply": "At the start of a {task_type} task"}}')


class D2SkillConfig(GRPOConfig):
    """D2Skill's parameters (GRPO's estimator parameters plus the bank's; defaults: D2Skill's script)."""

    mode: Literal["task_step", "task_only", "step_only"] = Field("task_step", description="which skills exist")
    top_k_task: int = Field(3, ge=0, description="task skills per episode")
    top_k_step: int = Field(3, ge=0, description="step skills per step")
    top_2k: int | None = Field(None, ge=1, description="candidates ranked by score (None: 2 * top_k)")
    alpha: float = Field(0.1, ge=0, le=1, description="weight of the similarity in the retrieval score")
    ucb_c: float = Field(0.05, ge=0, description="exploration coefficient c of the UCB term")
    threshold: float | None = Field(0.7, description="retrieved skills need similarity >= threshold (None: off)")
    similarity: SimilarityKind = Field("auto", description="auto (MiniLM when installed, else BM25), minilm, bm25")
    ab_ratio: float = Field(0.5, ge=0, le=1, description="share of each group that gets skills")
    utility_beta: float = Field(0.5, gt=0, le=1, description="EMA step of the utilities")
    intrinsic_coef: float = Field(1.0, ge=0, description="intrinsic reward coef * (success_i - baseline_g)")
    reflect_threshold: float = Field(0.5, ge=0, le=1, description="groups below this success rate are reflected on")
    max_reflections: int = Field(10, ge=0, description="failed episodes reflected on per iteration")
    max_task_skills: int = Field(300, ge=1, description="cap of the task-skill pool")
    max_step_skills: int = Field(300, ge=1, description="cap of the step-skill pool")
    protect_recent: int = Field(10, ge=0, description="skills created or updated this recently are never evicted")
    evict_every: int = Field(5, ge=1, description="iterations between evictions")
    skills_at_eval: bool = Field(True, description="retrieve skills at evaluation")
    trajectory_steps: int = Field(30, ge=1, description="last steps of an episode shown to the writer")
    observation_chars: int = Field(300, ge=20, description="observations shown to the writer are cut to this")
    writer: WriterConfig = Field(default_factory=WriterConfig, description="who writes skills")

    @model_validator(mode="after")
    def _ranked_candidates_cover_top_k(self) -> D2SkillConfig:
        need = max(self.top_k_task, self.top_k_step)
        if self.top_2k is not None and self.top_2k < need:
            raise ValueError(f"top_2k ({self.top_2k}) < top_k_task / top_k_step ({need}): the score ranks the top_2k "
                             "most similar skills and keeps top_k of them; raise top_2k or leave it out (2 * top_k)")
        return self


#: the bank's fields are not the GRPO estimator's
D2SkillConfig.non_estimator_fields = frozenset(D2SkillConfig.model_fields) - frozenset(GRPOConfig.model_fields)


def step_query(task: str, observation: str) -> str:
    """The retrieval text of a step: the task plus the current observation (D2Skill's format)."""
    return f"{task}\n\nCurrent observation: {' '.join(str(observation).split())}"


def parse_reflection(text: str) -> tuple[int, Skill | None, Skill | None]:
    """(first error step, step skill, task skill) of a writer's output; missing parts are 0/None."""
    text = text or ""
    m = re.search(r"FIRST_ERROR_STEP\s*:\s*(\d+)", text, re.IGNORECASE)
    error_step = int(m.group(1)) if m else 0
    out: list[Skill | None] = []
    for label, stop, kind in (("STEP_REFLECTION", "TASK_REFLECTION", "step"), ("TASK_REFLECTION", "FIRST_ERROR_STEP", "task")):
        body = after_label(text, (label,), stop_labels=(stop,))
        objects = json_objects(body) if body else []
        out.append(skill_from_object(objects[0], kind) if objects else None)
    return error_step, out[0], out[1]


def skills_text(task_skills: list[ScoredSkill], step_skills: list[ScoredSkill]) -> str:
    sections = []
    if task_skills:
        sections.append("Task-level experience (for this kind of task):\n" +
                        "\n".join(f"- {s.skill.title}: {s.skill.principle}" for s in task_skills))
    if step_skills:
        sections.append("Step-level experience (relevant to the current situation):\n" +
                        "\n".join(f"- {s.skill.title}: {s.skill.principle}" for s in step_skills))
    return "\n\n".join(sections)


@register_algorithm("d2skill")
class D2Skill(GRPO):
    """GRPO with task- and step-level skills, paired with/without-skill utilities and an intrinsic reward."""

    Config = D2SkillConfig
    trains: ClassVar[bool] = True
    memory_scope: ClassVar[str] = "run"  # type: ignore[assignment]

    def __init__(self, params: D2SkillConfig | None = None, *, similarity: Similarity | None = None, **context: Any):
        super().__init__(params, **context)
        self.params: D2SkillConfig
        self._similarity = similarity
        self._bank: D2SkillBank | None = None
        self.stats = WriterStats()
        self.run: Any = None
        self.writer: Writer | None = None
        self._task_skills: dict[str, list[ScoredSkill]] = {}
        self._used: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"task": set(), "step": set()})

    @property
    def bank(self) -> D2SkillBank:
        if self._bank is None:
            self._bank = D2SkillBank(self._similarity or build_similarity(self.params.similarity))
        return self._bank

    def setup(self, run: Any) -> None:
        self.run = run

    def _writer(self) -> Writer:
        if self.writer is None:
            self.writer = build_writer(self.params.writer, self.run, {"d2skill": TEMPLATE_REFLECT})
        return self.writer

    def _events(self, events: list[dict[str, Any]]) -> None:
        run_dir = self.context.get("run_dir")
        if run_dir is not None and events:
            run_dir.append_skill_events(events)

    # -- rollouts and prompts ---------------------------------------------------------------
    def plan_rollouts(self, iteration: int, tasks: Any, state: Any) -> list[EpisodeSpec]:
        """The default B x G groups; the first round(G * ab_ratio) members of each get skills."""
        specs = super().plan_rollouts(iteration, tasks, state)
        with_skills = int(round(state.group_size * self.params.ab_ratio))
        rank: dict[str, int] = defaultdict(int)
        out = []
        for spec in specs:
            k = rank[spec.group_id]
            rank[spec.group_id] += 1
            out.append(replace(spec, variant="skill") if k < with_skills else spec)
        return out

    def retrieve(self, pool: str, query: str, top_k: int) -> list[ScoredSkill]:
        p = self.params
        return self.bank.retrieve(pool, query, top_k=top_k, top_2k=p.top_2k, alpha=p.alpha, c=p.ucb_c,
                                  threshold=p.threshold)

    def prompt_additions(self, ctx: PromptContext) -> list[str]:
        p = self.params
        if (ctx.phase == "train" and ctx.variant != "skill") or (ctx.phase == "eval" and not p.skills_at_eval):
            return []
        if ctx.episode_id not in self._task_skills:
            self._task_skills[ctx.episode_id] = (self.retrieve("task", ctx.task, p.top_k_task)
                                                 if p.mode != "step_only" else [])
        task_skills = self._task_skills[ctx.episode_id]
        step_skills = self.retrieve("step", step_query(ctx.task, ctx.observation), p.top_k_step) \
            if p.mode != "task_only" else []
        used = self._used[ctx.episode_id]
        used["task"].update(s.skill.id for s in task_skills)
        used["step"].update(s.skill.id for s in step_skills)
        text = skills_text(task_skills, step_skills)
        return [text] if text else []

    def on_episode_end(self, episode: Any, phase: str) -> None:
        self._task_skills.pop(episode.episode_id, None)
        used = self._used.get(episode.episode_id, {"task": set(), "step": set()})
        episode.extra["task_skill_ids"] = sorted(used["task"])
        episode.extra["step_skill_ids"] = sorted(used["step"])
        if phase != "train":
            self._used.pop(episode.episode_id, None)

    # -- credit -----------------------------------------------------------------------------
    @staticmethod
    def group_baselines(episodes: list[Any]) -> dict[str, float]:
        """Mean success of each group's plain half (0 when a group has none)."""
        plain: dict[str, list[float]] = defaultdict(list)
        for ep in episodes:
            plain.setdefault(ep.group_id, [])
            if ep.variant != "skill":
                plain[ep.group_id].append(float(ep.won))
        return {g: (sum(v) / len(v) if v else 0.0) for g, v in plain.items()}

    def shape_rewards(self, steps: pd.DataFrame, episodes: Any) -> pd.DataFrame:
        """Add ``intrinsic_coef * (success_i - baseline_g)`` to the reward of each episode's last step."""
        if self.params.intrinsic_coef == 0 or steps.empty:
            return steps
        baselines = self.group_baselines(list(episodes))
        bonus = {ep.episode_id: self.params.intrinsic_coef * (float(ep.won) - baselines[ep.group_id]) for ep in episodes}
        steps = steps.copy()
        last = steps.groupby("episode_id")["step"].transform("max") == steps["step"]
        steps.loc[last, "reward"] = steps.loc[last, "reward"] + steps.loc[last, "episode_id"].map(bonus).fillna(0.0)
        return steps

    def update_utilities(self, episodes: list[Any], iteration: int) -> int:
        """Task-skill credit per group and step-skill credit per skill episode (see the module docstring)."""
        beta = self.params.utility_beta
        baselines = self.group_baselines(episodes)
        groups: dict[str, list[Any]] = defaultdict(list)
        for ep in episodes:
            groups[ep.group_id].append(ep)
        updated = 0
        for gid, members in groups.items():
            with_skill = [e for e in members if e.variant == "skill"]
            if not with_skill:
                continue
            base = baselines[gid]
            task_credit = sum(float(e.won) for e in with_skill) / len(with_skill) - base
            task_ids = set().union(*(self._used.get(e.episode_id, {"task": set()})["task"] for e in with_skill))
            updated += self.bank.update(sorted(task_ids), task_credit, beta, iteration)
            for e in with_skill:
                step_ids = self._used.get(e.episode_id, {"step": set()})["step"]
                updated += self.bank.update(sorted(step_ids), float(e.won) - base, beta, iteration)
        return updated

    # -- new skills -------------------------------------------------------------------------
    def reflection_items(self, episodes: list[Any]) -> list[tuple[Any, Any]]:
        """(failed episode, successful reference or None) from groups below ``reflect_threshold``."""
        groups: dict[str, list[Any]] = defaultdict(list)
        for ep in episodes:
            groups[ep.group_id].append(ep)
        items = []
        for members in groups.values():
            rate = sum(e.won for e in members) / len(members)
            if rate >= self.params.reflect_threshold:
                continue
            reference = next((e for e in members if e.won), None)
            items += [(e, reference) for e in members if not e.won]
        return items[: self.params.max_reflections]

    def write_skills(self, episodes: list[Any], iteration: int) -> list[Skill]:
        from siri_bench.seeding import derive_seed

        p = self.params
        items = self.reflection_items(episodes)
        if not items:
            return []
        show = lambda e: render_trajectory(e, max_steps=p.trajectory_steps, observation_chars=p.observation_chars)  # noqa: E731
        requests = [WriterRequest("d2skill", REFLECT_PROMPT.format(
            task=e.task, task_type=e.task_type, failed=show(e),
            reference_note=" (with a successful episode of the same task)" if ref is not None else "",
            reference=f"\nSuccessful episode (reference):\n{show(ref)}\n" if ref is not None else ""),
            {"task": e.task, "task_type": e.task_type},
            seed=derive_seed(e.policy_seed, "train", "step", 1_000_002)) for e, ref in items]
        added: list[Skill] = []
        for (ep, _), out in zip(items, self._writer().write(requests)):
            self.stats.add_output(out)
            error_step, step_skill, task_skill = parse_reflection(out.text if out.error is None else "")
            got = False
            if step_skill is not None and p.mode != "task_only":
                obs = ep.steps[error_step - 1].observation if 1 <= error_step <= len(ep.steps) else ""
                step_skill.key = step_query(ep.task, obs) if obs else ep.task
                added += self.bank.add([step_skill], "step", iteration=iteration)
                got = True
            if task_skill is not None and p.mode != "step_only":
                task_skill.key = ep.task
                added += self.bank.add([task_skill], "task", iteration=iteration)
                got = True
            if got:
                self.stats.parsed += 1
            else:
                self.stats.unparseable += 1
        return added

    def on_iteration_end(self, state: Any) -> dict[str, Any]:
        p = self.params
        episodes = list(state.episodes)
        it = state.iteration
        updated = self.update_utilities(episodes, it)
        added = self.write_skills(episodes, it)
        removed: list[Skill] = []
        if it % p.evict_every == 0:
            removed = (self.bank.evict("task", p.max_task_skills, it, protect=p.protect_recent, c=p.ucb_c)
                       + self.bank.evict("step", p.max_step_skills, it, protect=p.protect_recent, c=p.ucb_c))
        for ep in episodes:
            self._used.pop(ep.episode_id, None)
        self._events([{"event": "created", "iteration": it, "skill": s.id, "kind": s.kind, "title": s.title,
                       "key": s.key[:200]} for s in added]
                     + [{"event": "retired", "iteration": it, "skill": s.id, "kind": s.kind, "utility": s.utility,
                         "retrievals": s.retrievals, "reason": "evicted"} for s in removed])
        baselines = self.group_baselines(episodes)
        skill_eps = [e for e in episodes if e.variant == "skill"]
        gain = (sum(float(e.won) - baselines[e.group_id] for e in skill_eps) / len(skill_eps)) if skill_eps else 0.0
        return {"d2skill/task_skills": len(self.bank.pools["task"]), "d2skill/step_skills": len(self.bank.pools["step"]),
                "d2skill/new_skills": len(added), "d2skill/evicted": len(removed), "d2skill/utility_updates": updated,
                "d2skill/paired_gain": gain,
                **{f"d2skill/{k.split('/')[1]}": v for k, v in self.stats.as_dict().items()}}

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**self.counter_state(), **self.stats.as_dict(), "bank": self.bank.state_dict(),
                "prompt": REFLECT_PROMPT_VERSION}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.episodes_seen = int(state.get("episodes_seen", 0))
        self.stats.load(state)
        self.bank.load_state_dict(state.get("bank") or {})

"""SkillRL-style skill bank + GRPO (aiming-lab/SkillRL, a verl-agent fork).

1. **Bank.** ``bank_path`` loads a bank in SkillRL's JSON form (e.g. one written by a strong
   model). Without it, the bank is written before the first update: ``build_groups`` groups of
   the plain policy on training tasks (drawn from the run's task stream), then, per task type,
   up to 5 successful and 5 failed episodes go to the writer (the run's own policy by default),
   which returns general skills, task-type skills and common mistakes as JSON
   (:data:`BANK_PROMPT`); what does not parse is dropped and counted.
2. **Training.** GRPO (``estimator: grpo``) with the retrieved skills in every prompt
   (``retrieval: template`` by task type, or ``embedding`` top-k; :mod:`algorithms.skillrl_bank`).
3. **Evolution.** Every ``update_every`` iterations, ``validation_tasks`` training tasks are played
   once (phase ``validation``, drawn from the run's task stream); if a task type's success rate
   is below ``update_threshold``, up to ``max_failures`` failed validation episodes of the weak
   types go to the writer (:data:`UPDATE_PROMPT`), which returns 1 to ``max_new_skills`` new
   skills; they join the general skills of the *training* prompts only (SkillRL keeps them out of
   validation to avoid leakage; ``evolved_in_eval`` changes that). No utility scoring or pruning.
4. **Inference.** The bank stays in the prompt at evaluation (``inject_at_eval``).

The bank is part of the checkpoint (``state_dict``) and every change is an event in
``skills.jsonl``. ``memory_scope`` is ``run``.

Differences from SkillRL: no SFT cold start (use ``train.init_from`` with an SFT run); the
writer is the run's own policy unless ``writer.kind: openai`` (SkillRL: o3 / a teacher model);
the validation that triggers evolution is on training tasks, not the evaluation split (SkillRL's
validation set is its test set); the prompts are this project's wording.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from algorithms.base import PromptContext
from algorithms.grpo import GRPO, GRPOConfig
from algorithms.retrieval import SimilarityKind, build_similarity
from algorithms.skillrl_bank import SkillRLBank, SkillSelection, selection_text
from algorithms.skills import parse_skills, skill_from_object
from algorithms.trajectories import render_trajectory
from algorithms.writers import Writer, WriterConfig, WriterRequest, WriterStats, build_writer
from siri_bench.errors import ConfigError
from siri_bench.registry import register_algorithm

if TYPE_CHECKING:  # import-light: configs validate without numpy or pandas
    from siri_bench.rollout import EpisodeSpec

log = logging.getLogger(__name__)

BANK_PROMPT_VERSION = "skillrl.bank/v1"
BANK_PROMPT = """You write a skill bank for an agent that solves "{task_type}" tasks in a text-based environment.

Successful episodes:
{successes}

Failed episodes:
{failures}

From these episodes, write reusable skills as one JSON object with three lists:
"general_skills": skills that help in any task, "task_specific_skills": skills for {task_type} tasks,
"common_mistakes": mistakes seen in the failures.
Each skill has "title" (3-5 words), "principle" (1-2 sentences) and "when_to_apply"; each mistake has "description" and "how_to_avoid".
Return only the JSON object."""

UPDATE_PROMPT_VERSION = "skillrl.update/v1"
UPDATE_PROMPT = """These agent episodes failed. Suggest new skills that would have avoided the failures.

Failed episodes:
{failures}

Existing skill titles (do not repeat them): {titles}

Write 1 to {max_new} new skills as a JSON array; each has "title" (3-5 words), "principle" (1-2 sentences) and "when_to_apply". Return only the JSON array."""

TEMPLATE_BANK = ('{{"general_skills": [{{"title": "Search every place once", "principle": "Visit each receptacle '
                 'once before revisiting any of them.", "when_to_apply": "While the goal object is not found"}}], '
                 '"task_specific_skills": [{{"title": "Plan the {task_type} steps", "principle": "Find the object, '
                 'change its state if needed, then put it in place.", "when_to_apply": "At the start"}}], '
                 '"common_mistakes": [{{"description": "Repeating the same action in the same place.", '
                 '"how_to_avoid": "Try a different receptacle after one failed look."}}]}}')
TEMPLATE_UPDATE = ('[{{"title": "Check the goal after {n_failures} failures", "principle": "Reread the task and '
                   'check which part of it is still undone before acting again.", "when_to_apply": "After a failed '
                   'attempt"}}]')


class SkillRLConfig(GRPOConfig):
    """SkillRL's parameters (GRPO's estimator parameters plus the skill bank's)."""

    bank_path: str | None = Field(None, description="initial bank in SkillRL's JSON form (None: written from "
                                  "the plain policy's episodes before the first update)")
    build_groups: int = Field(4, ge=1, description="groups of G plain episodes the initial bank is written from")
    examples_per_outcome: int = Field(5, ge=1, description="successes and failures per task type shown to the writer")
    retrieval: Literal["template", "embedding"] = Field("template", description="skill retrieval mode")
    top_k: int = Field(6, ge=0, description="general skills in a prompt (embedding: also task skills by default)")
    task_top_k: int | None = Field(None, ge=0, description="task-specific skills in a prompt (None: all of the "
                                   "type in template mode, top_k in embedding mode)")
    similarity: SimilarityKind = Field("auto", description="embedding retrieval: auto, minilm or bm25")
    update_every: int = Field(5, ge=1, description="iterations between validations that may add skills")
    validation_tasks: int = Field(8, ge=1, description="training tasks played once per validation")
    update_threshold: float = Field(0.4, ge=0, le=1, description="task types below this validation success "
                                    "trigger new skills")
    max_failures: int = Field(10, ge=1, description="failed validation episodes collected per update")
    failures_shown: int = Field(5, ge=1, description="of those, shown to the writer")
    max_new_skills: int = Field(3, ge=1, description="new skills per update")
    evolved_in_eval: bool = Field(False, description="also put evolved skills into evaluation prompts")
    inject_at_eval: bool = Field(True, description="retrieve skills at evaluation (SkillRL's inference)")
    trajectory_steps: int = Field(5, ge=1, description="last steps of an episode shown to the writer")
    observation_chars: int = Field(200, ge=20, description="observations shown to the writer are cut to this")
    writer: WriterConfig = Field(default_factory=WriterConfig, description="who writes skills")


#: the bank's fields are not the GRPO estimator's
SkillRLConfig.non_estimator_fields = frozenset(SkillRLConfig.model_fields) - frozenset(GRPOConfig.model_fields)


@register_algorithm("skillrl")
class SkillRL(GRPO):
    """GRPO with a SkillRL-style skill bank in the prompt, evolved from failed validation episodes."""

    Config = SkillRLConfig
    trains: ClassVar[bool] = True
    memory_scope: ClassVar[str] = "run"  # type: ignore[assignment]

    def __init__(self, params: SkillRLConfig | None = None, **context: Any):
        super().__init__(params, **context)
        self.params: SkillRLConfig
        self.bank = SkillRLBank()
        self.built = False
        self.stats = WriterStats()
        self.run: Any = None
        self.writer: Writer | None = None
        self._similarity = None
        self._selected: dict[str, SkillSelection] = {}
        if self.params.bank_path is not None:
            path = Path(self.params.bank_path)
            if not path.exists():
                raise ConfigError(f"algorithm.bank_path = {str(path)!r} does not exist")
            try:
                self.bank = SkillRLBank.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, TypeError, AttributeError) as exc:
                raise ConfigError(f"algorithm.bank_path = {str(path)!r} is not a SkillRL skill bank: {exc}") from None
            self.built = True

    def setup(self, run: Any) -> None:
        self.run = run

    def _writer(self) -> Writer:
        if self.writer is None:
            self.writer = build_writer(self.params.writer, self.run,
                                       {"skills": TEMPLATE_BANK, "skill_update": TEMPLATE_UPDATE})
        return self.writer

    def _events(self, events: list[dict[str, Any]]) -> None:
        run_dir = self.context.get("run_dir")
        if run_dir is not None and events:
            run_dir.append_skill_events(events)

    # -- prompts ----------------------------------------------------------------------------
    def select(self, ctx: PromptContext) -> SkillSelection:
        if ctx.episode_id in self._selected:
            return self._selected[ctx.episode_id]
        p = self.params
        with_evolved = ctx.phase == "train" or p.evolved_in_eval
        if p.retrieval == "embedding":
            if self._similarity is None:
                self._similarity = build_similarity(p.similarity)
            sel = self.bank.retrieve_embedding(ctx.task, self._similarity, top_k=p.top_k, task_top_k=p.task_top_k,
                                               with_evolved=with_evolved)
        else:
            sel = self.bank.retrieve_template(ctx.task_type, top_k=p.top_k, task_top_k=p.task_top_k,
                                              with_evolved=with_evolved)
        self._selected[ctx.episode_id] = sel
        return sel

    def prompt_additions(self, ctx: PromptContext) -> list[str]:
        if ctx.phase == "eval" and not self.params.inject_at_eval:
            return []
        sel = self.select(ctx)
        return [selection_text(sel, ctx.task_type)] if sel else []

    def on_episode_end(self, episode: Any, phase: str) -> None:
        sel = self._selected.pop(episode.episode_id, None)
        episode.extra["skill_ids"] = sel.ids() if sel else []

    # -- the initial bank -------------------------------------------------------------------
    def plan_rollouts(self, iteration: int, tasks: Any, state: Any) -> list[EpisodeSpec]:
        if not self.built:
            self.build_bank(state)
        return super().plan_rollouts(iteration, tasks, state)

    def build_bank(self, state: Any) -> None:
        """Write the initial bank from plain episodes of ``build_groups`` training tasks."""
        from siri_bench.rollout import group_specs

        draws = state.task_stream.draw(state.train_task_ids, self.params.build_groups)
        specs = [replace(s, episode_id=s.episode_id.replace("train-", "bankbuild-"),
                         group_id=s.group_id.replace("train-", "bankbuild-"), phase="validation")
                 for s in group_specs(draws, run_seed=state.run_seed, iteration=0, group_size=state.group_size)]
        episodes = state.rollout(specs).episodes
        by_type: dict[str, list[Any]] = defaultdict(list)
        for ep in episodes:
            by_type[ep.task_type].append(ep)
        types = sorted(by_type)
        requests = [self._bank_request(t, by_type[t]) for t in types]
        events = []
        for task_type, out in zip(types, self._writer().write(requests)):
            self.stats.add_output(out)
            added, dropped = self._parse_bank(out.text if out.error is None else "", task_type)
            self.stats.parsed += len(added)
            self.stats.unparseable += dropped
            events += [{"event": "created", "iteration": 0, "skill": s.id, "kind": s.kind, "category": s.category,
                        "title": s.title, "source": "initial"} for s in added]
        self.built = True
        self._events(events)
        log.info("skillrl: initial bank of %d skills from %d episodes (%d outputs dropped)", len(self.bank),
                 len(episodes), self.stats.unparseable)

    def _bank_request(self, task_type: str, episodes: list[Any]) -> WriterRequest:
        k = self.params.examples_per_outcome
        ok = [e for e in episodes if e.won][:k]
        bad = [e for e in episodes if not e.won][:k]
        show = self._render
        return WriterRequest("skills", BANK_PROMPT.format(
            task_type=task_type, successes="\n\n".join(show(e) for e in ok) or "(none)",
            failures="\n\n".join(show(e) for e in bad) or "(none)"), {"task_type": task_type},
            seed=derive_seed(int(self.context.get("seed", 0)), "validation", "step", 7, len(episodes)))

    def _render(self, ep: Any) -> str:
        return f"Task: {ep.task}\n" + render_trajectory(ep, max_steps=self.params.trajectory_steps,
                                                         observation_chars=self.params.observation_chars)

    def _parse_bank(self, text: str, task_type: str) -> tuple[list[Any], int]:
        """Skills of a bank-writing output: the three lists of one JSON object (or loose skill objects)."""
        added, dropped = [], 0
        found = False
        for value in _json_dicts_with_lists(text):
            found = True
            for key, kind in (("general_skills", "general"), ("task_specific_skills", "task"),
                              ("common_mistakes", "mistake")):
                items = value.get(key) or []
                if isinstance(items, dict):
                    items = items.get(task_type) or [x for v in items.values() if isinstance(v, list) for x in v]
                parsed = [skill_from_object(o, kind) if isinstance(o, dict) else None for o in items]
                dropped += sum(s is None for s in parsed)
                added += self.bank.add([s for s in parsed if s is not None], category=task_type, source="initial")
        if not found:
            skills, dropped = parse_skills(text, "general")
            added += self.bank.add(skills, category=task_type, source="initial")
        return added, dropped

    # -- evolution --------------------------------------------------------------------------
    def on_iteration_end(self, state: Any) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        if state.iteration % self.params.update_every == 0:
            metrics.update(self.validate_and_evolve(state))
        metrics.update({"skillrl/bank_size": len(self.bank), "skillrl/evolved": len(self.bank.evolved),
                        **{f"skillrl/{k.split('/')[1]}": v for k, v in self.stats.as_dict().items()}})
        return metrics

    def validation_specs(self, state: Any) -> list[EpisodeSpec]:
        from siri_bench.rollout import EpisodeSpec
        from siri_bench.seeding import EpisodeSeeds

        draws = state.task_stream.draw(state.train_task_ids, self.params.validation_tasks)
        specs = []
        for k, draw in enumerate(draws):
            gid = f"validation-i{state.iteration:06d}-t{k:04d}"
            seeds = EpisodeSeeds(draw.task_seed, derive_seed(state.run_seed, "validation", "env", state.iteration, k),
                                 derive_seed(state.run_seed, "validation", "policy", state.iteration, k))
            specs.append(EpisodeSpec(gid, gid, draw.task_id, seeds, "validation", state.iteration))
        return specs

    def validate_and_evolve(self, state: Any) -> dict[str, Any]:
        episodes = state.rollout(self.validation_specs(state)).episodes
        rates: dict[str, list[bool]] = defaultdict(list)
        for ep in episodes:
            rates[ep.task_type].append(bool(ep.won))
        weak = sorted(t for t, won in rates.items() if sum(won) / len(won) < self.params.update_threshold)
        metrics: dict[str, Any] = {"skillrl/validation_success": sum(e.won for e in episodes) / max(1, len(episodes)),
                                   "skillrl/weak_types": len(weak), "skillrl/new_skills": 0}
        failures = [e for e in episodes if not e.won and e.task_type in weak][: self.params.max_failures]
        if not failures:
            return metrics
        titles = [s.title for s in self.bank.all_skills()]
        shown = failures[: self.params.failures_shown]
        request = WriterRequest("skill_update", UPDATE_PROMPT.format(
            failures="\n\n".join(f"Example {i + 1} (task type {e.task_type}):\n{self._render(e)}"
                                 for i, e in enumerate(shown)),
            titles=json.dumps(titles), max_new=self.params.max_new_skills),
            {"n_failures": str(len(failures))}, seed=derive_seed(state.run_seed, "validation", "step", state.iteration))
        out = self._writer().write([request])[0]
        self.stats.add_output(out)
        skills, dropped = parse_skills(out.text if out.error is None else "", "general",
                                       max_skills=self.params.max_new_skills)
        added = self.bank.add(skills, iteration=state.iteration, source="validation")
        self.stats.parsed += len(added)
        self.stats.unparseable += dropped
        self._events([{"event": "created", "iteration": state.iteration, "skill": s.id, "kind": "general",
                       "title": s.title, "source": "validation", "weak_types": weak} for s in added])
        metrics["skillrl/new_skills"] = len(added)
        return metrics

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**self.counter_state(), **self.stats.as_dict(), "bank": self.bank.to_json(), "built": self.built,
                "prompts": [BANK_PROMPT_VERSION, UPDATE_PROMPT_VERSION]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.episodes_seen = int(state.get("episodes_seen", 0))
        self.stats.load(state)
        self.bank = SkillRLBank.from_json(state.get("bank") or {})
        self.built = bool(state.get("built", False))


def derive_seed(run_seed: int, phase: str, stream: str, *key: int) -> int:
    """:func:`siri_bench.seeding.derive_seed`, imported when called (this module stays import-light)."""
    from siri_bench.seeding import derive_seed as derive

    return derive(run_seed, phase, stream, *key)


def _json_dicts_with_lists(text: str) -> list[dict[str, Any]]:
    """JSON objects in ``text`` that hold at least one of SkillRL's bank lists."""
    from algorithms.model_output import json_values

    keys = ("general_skills", "task_specific_skills", "common_mistakes")
    return [v for v in json_values(text or "") if isinstance(v, dict) and any(k in v for k in keys)]


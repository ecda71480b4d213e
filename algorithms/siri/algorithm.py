"""SIRI on the harness's training hooks (see :mod:`algorithms.base` for the hook order).

Per training iteration ``i`` (1-based; iteration 0 is the evaluation before training):

* **warm-up** (``i <= warmup_iters``): plain base-optimizer training (GiGPO or GRPO, ``base``);
  every successful plain episode goes to the success buffer (:meth:`SIRI.on_episode_end`).
* **mining** at the end of iteration ``w = max(1, warmup_iters)`` and every ``mine_every``
  iterations after it (:meth:`SIRI.on_iteration_end`): for each category with at least
  ``mine_min_success`` buffered successes and fewer than ``max_candidates`` candidates, the writer
  summarises ``mine_k`` of them into one skill; it enters the bank as a candidate (or is dropped:
  unparseable, or a near-duplicate).
* **paired validation** from iteration ``warmup_iters + 1`` (:meth:`SIRI.plan_rollouts`): up to
  ``validation_pairs`` skills (candidates first) each get a plain group and a skill-augmented
  group on one training task of their category (same task and env seed), besides the B plain
  groups. When a pair's 2G episodes have finished, the paired gain updates the skill's utility
  and lifecycle. The plain half of each pair enters the base loss like any plain group.
* **internalization** (:meth:`SIRI.loss_terms`): the skill-augmented episodes that pass the gate
  give their positive-advantage steps, re-built with the plain prompt, to the weighted NLL, added to
  the base loss with ``lambda_int(k)``. Only plain rows enter the base PPO-clip loss (with its KL).

Evaluation uses the plain prompt: :meth:`SIRI.prompt_additions` adds nothing outside training
rollouts (``inference_skills: true`` is the ablation that keeps the active skills in the prompt).

Skill-bank events go to the run's ``skills.jsonl`` at every iteration's end; the bank, the buffer
and the counters are in every checkpoint (:meth:`SIRI.state_dict`). A resumed run first drops the
events of iterations it will redo.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from algorithms.base import Algorithm, PromptContext
from algorithms.siri.bank import BankSettings, Skill, SkillBank
from algorithms.siri.buffer import SuccessBuffer, SuccessEpisode
from algorithms.siri.config import SIRIConfig
from algorithms.siri.internalization import (
    SkillGroupInfo,
    internalization_loss,
    internalization_weights,
    lambda_int,
)
from algorithms.siri.validation import (
    PLAIN_VARIANT,
    SKILL_VARIANT,
    ValidationPair,
    episode_value,
    pair_specs,
    paired_gain,
)
from algorithms.siri.writer import SkillWriter, build_writer
from siri_bench.registry import register_algorithm
from siri_bench.seeding import derive_seed

log = logging.getLogger(__name__)

#: episode statuses that say nothing about a skill (infrastructure failures): left out of paired means
EXCLUDED_STATUSES = frozenset({"env_error", "policy_error"})
#: characters of a dropped writer answer kept in its ``dropped`` event
RAW_CHARS = 2000


@register_algorithm("siri")
class SIRI(Algorithm):
    """SIRI: warm-up, self-skill mining with paired validation, advantage-weighted internalization."""

    Config = SIRIConfig
    trains: ClassVar[bool] = True
    memory_scope: ClassVar[str] = "run"    # type: ignore[assignment]

    def __init__(self, params: SIRIConfig | None = None, **context: Any):
        super().__init__(params, **context)
        p: SIRIConfig = self.params  # type: ignore[assignment]
        self.bank = SkillBank(BankSettings.from_params(p))
        self.buffer = SuccessBuffer(p.buffer_per_category)
        self.first_internalization: int | None = None
        self.last_rolled: dict[str, int] = {}          # skill id -> last iteration with skill rollouts
        self.iteration = 0                              # last finished iteration
        self.totals: Counter[str] = Counter()           # run totals (mined, dropped, ...)
        self._writer: SkillWriter | None = None
        self._tasks_by_category: dict[str, list[str]] | None = None
        self._trimmed_log = False
        self._new_iteration(0)

    # -- per-iteration bookkeeping ----------------------------------------------------------------
    def _new_iteration(self, iteration: int) -> None:
        self.current = iteration
        self.pairs: dict[str, ValidationPair] = {}           # skill group id -> pair
        self.pair_of_group: dict[str, ValidationPair] = {}   # plain or skill group id -> pair
        self.finished: Counter[str] = Counter()              # skill group id -> finished episodes
        self.values: dict[str, dict[str, float]] = {}        # group id -> {episode id: R}
        self.plain_means: dict[str, float] = {}              # skill group id -> mean R of its plain group
        self.counts: Counter[str] = Counter()                # this iteration's counters
        self.gains: list[float] = []
        self.dropped_events: list[dict[str, Any]] = []
        self._plain_ids: dict[int, list[int] | None] = {}    # step-table row -> plain prompt ids

    @property
    def p(self) -> SIRIConfig:
        return self.params  # type: ignore[return-value]

    def category_of(self, task_type: str) -> str:
        return "all" if self.p.category == "single" else (str(task_type) or "unknown")

    def is_warmup(self, iteration: int) -> bool:
        return iteration <= self.p.warmup_iters

    def mines_at(self, iteration: int) -> bool:
        """Whether mining runs at the end of ``iteration``."""
        first = max(1, self.p.warmup_iters)
        return iteration >= first and (iteration - first) % self.p.mine_every == 0

    # -- 1. rollouts --------------------------------------------------------------------------------
    def plan_rollouts(self, iteration: int, tasks: Sequence[Any], state: Any) -> list[Any]:
        """B plain groups, plus one plain + one skill-augmented group per skill to validate (or,
        without validation, per active skill to roll out), up to ``validation_pairs``."""
        self._trim_event_log(iteration)
        self._new_iteration(iteration)
        specs = super().plan_rollouts(iteration, tasks, state)
        if self.is_warmup(iteration):
            log.info("SIRI iteration %d: warm-up %d/%d (base %s); %d successes buffered %s", iteration, iteration,
                     self.p.warmup_iters, self.p.base, sum(self.buffer.counts().values()), self.buffer.counts())
            return specs
        skills = self._skills_to_roll(self.p.validation_pairs)
        if not skills:
            log.info("SIRI iteration %d: no skill to validate yet; plain training", iteration)
            return specs
        by_category = self._category_tasks(state)
        for k, skill in enumerate(skills):
            task_ids = by_category.get(skill.category, [])
            if not task_ids:
                log.warning("SIRI: no training task of category %r for %s; not validated", skill.category,
                            skill.skill_id)
                continue
            draw = state.task_stream.draw(task_ids, 1)[0]
            pair, pair_specs_ = pair_specs(skill.skill_id, skill.category, draw, run_seed=state.run_seed,
                                           iteration=iteration, group=len(tasks) + k, group_size=state.group_size)
            self.pairs[pair.skill_group] = pair
            self.pair_of_group[pair.plain_group] = self.pair_of_group[pair.skill_group] = pair
            self.last_rolled[skill.skill_id] = iteration
            specs += pair_specs_
        log.info("SIRI iteration %d: paired %s of %d skill(s) on %s", iteration,
                 "validation" if self.p.validation else "skill rollouts", len(self.pairs),
                 ", ".join(f"{p.skill_id} ({p.category})" for p in self.pairs.values()))
        return specs

    def _skills_to_roll(self, limit: int) -> list[Skill]:
        if self.p.validation:
            return self.bank.to_validate(limit)
        active = [s for s in self.bank.skills.values() if s.status == "active"]
        active.sort(key=lambda s: (self.last_rolled.get(s.skill_id, -1), s.skill_id))
        return active[:limit]

    def _category_tasks(self, state: Any) -> dict[str, list[str]]:
        """Training task ids by category (the env's task_type, asked once per task)."""
        if self._tasks_by_category is None:
            out: dict[str, list[str]] = {}
            for task_id in state.train_task_ids:
                category = "all" if self.p.category == "single" else self.category_of(
                    state.task_info(task_id).get("task_type", ""))
                out.setdefault(category, []).append(task_id)
            self._tasks_by_category = out
        return self._tasks_by_category

    # -- 2. prompts ---------------------------------------------------------------------------------
    def prompt_additions(self, ctx: PromptContext) -> list[str]:
        """Training: the skill text in the prompts of skill-augmented episodes, nothing else.
        Evaluation: nothing (plain inference), unless ``inference_skills``: the active skills of the
        task's category."""
        if ctx.phase == "train":
            if ctx.variant != SKILL_VARIANT:
                return []
            pair = self.pairs.get(ctx.group_id)
            return [self.bank.skills[pair.skill_id].text()] if pair is not None else []
        if self.p.inference_skills:
            return [s.text() for s in self.bank.active(self.category_of(ctx.task_type))]
        return []

    # -- 3. episodes --------------------------------------------------------------------------------
    def on_episode_end(self, episode: Any, phase: str) -> None:
        """Buffer plain training successes; validate a skill when its pair has finished."""
        if phase != "train":
            return
        is_expert = any(getattr(s, "actor", "policy") != "policy" for s in episode.steps)
        if episode.variant == PLAIN_VARIANT and episode.won and not is_expert:
            self.buffer.add(SuccessEpisode.from_record(episode, self.category_of(episode.task_type)))
        pair = self.pair_of_group.get(episode.group_id)
        if pair is None:
            return
        if episode.status not in EXCLUDED_STATUSES:
            self.values.setdefault(episode.group_id, {})[episode.episode_id] = episode_value(
                episode, self.p.validation_return)
        self.finished[pair.skill_group] += 1
        if self.finished[pair.skill_group] == 2 * self._group_size():
            self._complete_pair(pair)

    def _group_size(self) -> int:
        return int(self.config.train.group_size) if self.config is not None else 1

    def _complete_pair(self, pair: ValidationPair) -> None:
        skill_values = list(self.values.get(pair.skill_group, {}).values())
        plain_values = list(self.values.get(pair.plain_group, {}).values())
        if not skill_values or not plain_values:
            self.counts["validation_skipped"] += 1
            log.warning("SIRI: pair of %s has no usable episode on one side (errors); not validated", pair.skill_id)
            return
        self.plain_means[pair.skill_group] = float(np.mean(plain_values))
        self.counts["pairs"] += 1
        if not self.p.validation:
            return
        if not self.bank.skills[pair.skill_id].usable:
            # retired while its pair was running (another skill's promotion evicted it): no more validations
            self.counts["validation_after_retirement"] += 1
            log.info("SIRI: %s was retired while its pair ran; its gain is not recorded", pair.skill_id)
            return
        gain = paired_gain(skill_values, plain_values)
        skill = self.bank.validate(pair.skill_id, gain, self.current, r_skill=float(np.mean(skill_values)),
                                   r_plain=float(np.mean(plain_values)), task_id=pair.task_id,
                                   skill_group=pair.skill_group, plain_group=pair.plain_group)
        self.gains.append(gain)
        log.info("SIRI validation of %s (%s): R_skill %.3f, R_plain %.3f, gain d %+.3f -> U %.3f (n=%d), %s",
                 skill.skill_id, skill.category, np.mean(skill_values), np.mean(plain_values), gain, skill.utility,
                 skill.n, skill.status)

    # -- 4-6. advantages and the rows of the base loss ------------------------------------------------
    def estimator_params(self) -> dict[str, Any]:
        penalty = float(self.config.policy.invalid_action_penalty) if self.config is not None else 0.0
        return self.p.estimator_params(invalid_penalty=penalty)

    def advantages(self, steps: pd.DataFrame) -> np.ndarray:
        """The base optimizer's advantages, each group on its own: for a skill-augmented group these
        are the action-level advantages the internalization selects on."""
        from algorithms import estimators

        return estimators.compute(self.p.base, steps, **self.estimator_params())

    def base_loss_rows(self, steps: pd.DataFrame) -> np.ndarray:
        """Plain rollouts only: skill-augmented steps were sampled under another prompt."""
        return (steps["variant"].astype(str) != SKILL_VARIANT).to_numpy()

    # -- 7. the internalization loss ----------------------------------------------------------------
    def group_infos(self) -> dict[str, SkillGroupInfo]:
        """The skill groups of this iteration whose pair is complete, with their skill's current state."""
        out = {}
        for group, pair in self.pairs.items():
            if group in self.plain_means:
                skill = self.bank.skills[pair.skill_id]
                out[group] = SkillGroupInfo(skill.skill_id, skill.status, skill.utility, self.plain_means[group])
        return out

    def row_weights(self, rows: pd.DataFrame, steps: Sequence[Any], batch: Any) -> np.ndarray:
        """w_t of each row (0 where the gate, the advantage or a too-long plain prompt rules it out)."""
        if not self.pairs or len(rows) == 0:
            return np.zeros(len(rows))
        values = {e: v for group in self.pairs for e, v in self.values.get(group, {}).items()}
        res = internalization_weights(rows, rows["advantage"].to_numpy(dtype=np.float64), self.group_infos(), values,
                                      gate=self.p.gate, gate_threshold=self.p.gate_threshold,
                                      weighting=self.p.weighting)
        weights = res.weights
        for i in np.flatnonzero(weights > 0):
            if self.plain_prompt_ids(int(rows["row"].iloc[i]), steps[i], batch) is None:
                weights[i] = 0.0
        return weights

    def plain_prompt_ids(self, row: int, step: Any, batch: Any) -> list[int] | None:
        """The step's prompt without the skill (cached per step-table row for the iteration)."""
        if row not in self._plain_ids:
            ids = batch.plain_prompt_ids(step)
            if ids is None:
                self.counts["plain_prompt_too_long"] += 1
            self._plain_ids[row] = ids
        return self._plain_ids[row]

    def loss_terms(self, batch: Any, policy: Any) -> dict[str, Any]:
        """``lambda_int(k) * L_int`` of this micro-batch: its share of the mini-batch's weighted NLL of
        the kept skill-guided action units under the plain prompts."""
        if not self.pairs or self.p.lambda_int_max <= 0:
            return {}
        minibatch_weights = self.row_weights(batch.minibatch, batch.minibatch_steps, batch)
        total = float((minibatch_weights * batch.minibatch["units"].to_numpy(dtype=np.float64)).sum())
        if total <= 0:
            return {}
        if self.first_internalization is None:
            self.first_internalization = int(batch.iteration)
            log.info("SIRI iteration %d: first internalization step", batch.iteration)
        weights = self.row_weights(batch.rows, batch.steps, batch)
        keep = np.flatnonzero(weights > 0)
        if len(keep) == 0:
            return {}
        steps = [batch.steps[i] for i in keep]
        plain = {id(step): self._plain_ids[int(batch.rows["row"].iloc[i])] for step, i in zip(steps, keep)}
        loss = internalization_loss(policy, steps, weights[keep], plain_prompt_ids=lambda step: plain[id(step)],
                                    weight_total=total, score_temperature=batch.settings.score_temperature)
        lam = lambda_int(int(batch.iteration), self.first_internalization, self.p.lambda_int_max,
                         self.p.lambda_warmup_iters)
        return {"internalization": lam * loss}

    # -- 8. iteration end: metrics, mining, the event log --------------------------------------------
    def on_iteration_end(self, state: Any) -> dict[str, Any]:
        iteration = int(state.iteration)
        metrics = self._internalization_metrics(state, iteration)
        if self.mines_at(iteration):
            self._mine(state, iteration)
        events = self.bank.take_events() + self.dropped_events
        self.dropped_events = []
        events.sort(key=lambda e: e["iteration"])
        for e in events:
            if e["event"] in ("promoted", "retired"):
                log.info("SIRI iteration %d: %s %s (%s), U %.3f, n %d%s", iteration, e["skill_id"], e["event"],
                         e["category"], e["utility"], e["n"], f", reason {e['reason']}" if e.get("reason") else "")
        self._write_events(events)
        kinds = Counter(e["event"] for e in events)
        self.totals.update({k: v for k, v in kinds.items()})
        self.iteration = iteration
        counts = self.bank.counts()
        metrics.update({
            "siri/warmup": int(self.is_warmup(iteration)),
            "siri/buffer_successes": int(sum(self.buffer.counts().values())),
            "siri/pairs": int(self.counts["pairs"]),
            "siri/validations": len(self.gains),
            "siri/mean_gain": float(np.mean(self.gains)) if self.gains else None,
            "siri/created": int(kinds["created"]),
            "siri/promoted": int(kinds["promoted"]),
            "siri/retired": int(kinds["retired"]),
            "siri/dropped_unparseable": int(self.counts["dropped_unparseable"]),
            "siri/dropped_duplicate": int(self.counts["dropped_duplicate"]),
            "siri/mining_skipped_cap": int(self.counts["mining_skipped_cap"]),
            "siri/skills_candidate": sum(c["candidate"] for c in counts.values()),
            "siri/skills_active": sum(c["active"] for c in counts.values()),
            "siri/skills_retired": sum(c["retired"] for c in counts.values()),
        })
        return metrics

    def _internalization_metrics(self, state: Any, iteration: int) -> dict[str, Any]:
        """Token counts of the base loss and of internalization, from the iteration's step table."""
        table = state.steps
        out: dict[str, Any] = {"siri/lambda_int": lambda_int(iteration, self.first_internalization,
                                                             self.p.lambda_int_max, self.p.lambda_warmup_iters)}
        if table is None or len(table) == 0:
            return {**out, "siri/internalization_token_fraction": 0.0}
        units = table["units"].to_numpy(dtype=np.float64)
        base_units = float(units[table["base"].to_numpy(dtype=bool)].sum())
        int_units, kept = 0.0, 0
        eligible: list[str] = []
        gated: list[str] = []
        if self.pairs and self.p.lambda_int_max > 0:
            values = {e: v for group in self.pairs for e, v in self.values.get(group, {}).items()}
            res = internalization_weights(table, table["advantage"].to_numpy(dtype=np.float64), self.group_infos(),
                                          values, gate=self.p.gate, gate_threshold=self.p.gate_threshold,
                                          weighting=self.p.weighting)
            used = np.array([w > 0 and self._plain_ids.get(int(r)) is not None
                             for w, r in zip(res.weights, table["row"])], dtype=bool)
            int_units, kept = float(units[used].sum()), int(used.sum())
            eligible, gated = res.eligible_episodes, res.gated_out_episodes
        fraction = int_units / (base_units + int_units) if base_units + int_units > 0 else 0.0
        skill_episodes = int((table.drop_duplicates("episode_id")["variant"] == SKILL_VARIANT).sum())
        if kept:
            log.info("SIRI iteration %d: internalization of %d steps from %d of %d skill-augmented episodes "
                     "(%d gated out); %.1f%% of training tokens, lambda_int %.3f", iteration, kept, len(eligible),
                     skill_episodes, len(gated), 100 * fraction, out["siri/lambda_int"])
        return {**out, "siri/skill_episodes": skill_episodes, "siri/eligible_episodes": len(eligible),
                "siri/gated_out_episodes": len(gated), "siri/internalization_steps": kept,
                "siri/internalization_tokens": int_units, "siri/base_tokens": base_units,
                "siri/internalization_token_fraction": fraction,
                "siri/plain_prompt_too_long": int(self.counts["plain_prompt_too_long"])}

    def _mine(self, state: Any, iteration: int) -> None:
        """Write one skill per category that has enough successes and room for a candidate."""
        p = self.p
        jobs = []
        for category in self.buffer.categories(min_count=p.mine_min_success):
            if not self.bank.can_add(category):
                self.counts["mining_skipped_cap"] += 1
                continue
            key = zlib.crc32(category.encode("utf-8"))
            episodes = self.buffer.sample(category, p.mine_k, derive_seed(state.run_seed, "validation", "task",
                                                                         iteration, key))
            jobs.append((category, episodes, derive_seed(state.run_seed, "validation", "policy", iteration, key)))
        if not jobs:
            log.info("SIRI iteration %d: mining: no category with %d successes and room for a candidate (buffer %s)",
                     iteration, p.mine_min_success, self.buffer.counts())
            return
        if self._writer is None:
            self._writer = build_writer(p, state.policy)
        results = self._writer.write(jobs)
        created = []
        for result in results:
            if result.draft is None:
                self.counts["dropped_unparseable"] += 1
                self.dropped_events.append(self._dropped(result.category, iteration, result.reason, result.raw))
                continue
            duplicate = self.bank.duplicate_of(result.category, result.draft.steps)
            if duplicate is not None:
                self.counts["dropped_duplicate"] += 1
                self.bank.dropped_duplicates += 1
                self.dropped_events.append(self._dropped(result.category, iteration,
                                                         f"duplicate of {duplicate.skill_id}", result.raw))
                continue
            skill = self.bank.add(result.category, result.draft.title, result.draft.when, result.draft.steps,
                                  iteration, source=self._writer.name)
            if skill is not None:
                created.append(skill)
        log.info("SIRI iteration %d: mining (%s writer): %d skill(s) created %s, %d unparseable, %d duplicate(s)",
                 iteration, self._writer.name, len(created), [f"{s.skill_id} ({s.category})" for s in created],
                 self.counts["dropped_unparseable"], self.counts["dropped_duplicate"])

    def _dropped(self, category: str, iteration: int, reason: str, raw: str) -> dict[str, Any]:
        return {"event": "dropped", "skill_id": None, "category": category, "iteration": int(iteration),
                "reason": reason, "source": self._writer.name if self._writer else "", "raw": raw[:RAW_CHARS]}

    # -- the event log ------------------------------------------------------------------------------
    def _run_dir(self) -> Any:
        return self.context.get("run_dir")

    def _write_events(self, events: list[dict[str, Any]]) -> None:
        run_dir = self._run_dir()
        if run_dir is not None and events:
            run_dir.append_skill_events(events)

    def _trim_event_log(self, iteration: int) -> None:
        """Once per process, before the first planned iteration: drop logged events of that iteration
        and later ones (left by an interrupted attempt that this run now redoes)."""
        if self._trimmed_log:
            return
        self._trimmed_log = True
        run_dir = self._run_dir()
        if run_dir is None or not run_dir.skills_path.exists():
            return
        from siri_bench.store import atomic_write_text, read_jsonl, to_jsonl

        events = read_jsonl(run_dir.skills_path)
        kept = [e for e in events if int(e.get("iteration", 0)) < iteration]
        if len(kept) != len(events):
            log.info("SIRI: dropping %d skill events of iterations >= %d (redone after a resume)",
                     len(events) - len(kept), iteration)
            atomic_write_text(run_dir.skills_path, to_jsonl(kept))

    # -- 10. checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"bank": self.bank.state_dict(), "buffer": self.buffer.state_dict(),
                "first_internalization": self.first_internalization, "last_rolled": dict(self.last_rolled),
                "iteration": self.iteration, "totals": dict(self.totals)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.bank.load_state_dict(state["bank"])
        self.buffer.load_state_dict(state["buffer"])
        self.first_internalization = state.get("first_internalization")
        self.last_rolled = dict(state.get("last_rolled", {}))
        self.iteration = int(state.get("iteration", 0))
        self.totals = Counter(state.get("totals", {}))
        self._new_iteration(self.iteration)

"""The rollout engine: episodes over an env pool, one batched policy call per step.

:class:`RolloutEngine` plays a list of :class:`EpisodeSpec` (training groups: B tasks x G copies
with the same task and env seed; evaluation: a fixed task list) on an env pool with
``pool.num_envs`` slots. Whenever a slot is free the next pending episode is reset into it; then
every live episode builds its prompt (the algorithm's prompt additions included), the policy
answers all of them in **one** batched call (finished episodes are never sent to the model), the
outputs are projected onto actions (:mod:`siri_bench.parsing`), and all actions go to the pool in
one ``step`` call.

Every step yields a :class:`~siri_bench.records.StepRecord`: ids, group, step index, prompt and
response token ids, the action-token mask, sampling log-probs, reward, done/won/score, validity and
penalty, the prompt additions, the full output, the parsed action and the **anchor key** GiGPO
groups steps on: ``env.anchor: state`` (default) uses ``info["anchor_state"]`` of the state the
action was taken in (ALFWorld: observation plus sorted admissible actions, so states that differ
only in the inventory stay apart; WebShop: the page state); ``env.anchor: observation`` uses the
raw observation text, as verl-agent does.

Episode status (exactly one, :data:`siri_bench.store.EPISODE_STATUSES`), first match wins:

* ``env_error`` - the engine crashed or timed out (the pool's ``StepResult.error``);
* ``policy_error`` - the back end failed on the episode's request, or there was no action to score;
* ``context_overflow`` - the prompt does not fit ``policy.max_prompt_tokens`` even without history
  (or the server said so);
* ``success`` - the env terminated with ``won`` (only a real win: truncation is never a success);
* ``failure`` - the env terminated without a win (e.g. a WebShop purchase scoring below 1);
* ``invalid_action`` - ``policy.invalid_action_limit`` parsed but non-admissible actions were sent;
* ``invalid_format`` - ``policy.invalid_format_limit`` outputs had no parseable action, or the
  episode ran out of steps without a single parseable action;
* ``step_limit`` - the env truncated the episode at its step limit (or the engine's safety cap).

**Expert episodes** (``EpisodeSpec.actor == "expert"``, behaviour cloning): the env's
``expert_plan()`` is read right after the reset and its actions are played in order instead of the
policy's; the records look like policy steps, so the same loss code trains on them. Generate mode
records the target response ``<think>Next step: {action}.</think><action>{action}</action>`` plus
EOS (:data:`EXPERT_THINK`: the think text restates the planned action and invents no reasoning);
score mode records the expert action's index among the candidates (-1 when the action is not a
candidate, e.g. a WebShop search query other than the derived ones: such a step has no loss unit).
A plan that runs out before the episode ends fails the episode (``policy_error``).

:func:`rebuild_prompt_ids` rebuilds a recorded step's prompt with other (e.g. no) additions, from
the task, observation, admissible actions and history each :class:`StepRecord` keeps.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from siri_bench.parsing import Projection, project, project_choice
from siri_bench.policy.base import GenerationRequest, Policy, SamplingParams
from siri_bench.policy.scoring import choose_candidate, log_softmax
from siri_bench.prompts import (
    HistoryEntry,
    Prompt,
    PromptBuilder,
    chat_messages,
    encode_prompt,
    env_format_for,
)
from siri_bench.records import EpisodeRecord, StepRecord, episodes_frame, steps_frame, transcript_frame
from siri_bench.seeding import (
    EpisodeSeeds,
    TaskDraw,
    derive_seed,
    sample_task_id,
    step_seed,
    train_episode_seeds,
)

log = logging.getLogger(__name__)


class StepResultLike(Protocol):
    observation: str
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]
    error: str | None


class EnvPoolLike(Protocol):
    """What the engine needs of ``envs.workers.EnvPool``."""

    num_envs: int

    def reset(self, requests: Sequence[tuple[int, int | None, dict[str, Any] | None]]) -> Mapping[int, Any]: ...

    def step(self, actions: Mapping[int, str]) -> Mapping[int, Any]: ...


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to play."""

    episode_id: str
    group_id: str
    task_id: str | None            # None: the env picks the task from env_seed
    seeds: EpisodeSeeds
    phase: str = "train"
    iteration: int = 0
    trial: int = 0
    variant: str = "plain"
    actor: str = "policy"          # "policy", or "expert": play env.unwrapped.expert_plan()


#: Generate-mode think text of expert (behaviour-cloning) targets; ``{action}`` is the expert action.
EXPERT_THINK = "Next step: {action}."


def expert_response(action: str) -> str:
    """The generate-mode target of one expert step."""
    return f"<think>{EXPERT_THINK.format(action=action)}</think><action>{action}</action>"


def group_id_of(iteration: int, group: int, variant: str = "plain") -> str:
    """``train-i{iteration}-g{group}`` (plus ``-{variant}`` for non-plain groups)."""
    base = f"train-i{iteration:06d}-g{group:04d}"
    return base if variant == "plain" else f"{base}-{variant}"


def group_specs(tasks: Sequence[TaskDraw], *, run_seed: int, iteration: int, group_size: int,
                first_group: int = 0, variant: str = "plain", actor: str = "policy") -> list[EpisodeSpec]:
    """One group of ``group_size`` episodes per drawn task (group index ``first_group + k``): the
    members share the task and the env seed and differ in policy seed; the recorded task seed is
    the draw's. Ids: ``train-i{iteration}-g{g}[-{variant}]-m{m}``."""
    specs = []
    for k, draw in enumerate(tasks):
        g = first_group + k
        group = group_id_of(iteration, g, variant)
        for m in range(group_size):
            seeds = train_episode_seeds(run_seed, iteration, g, m)
            seeds = EpisodeSeeds(draw.task_seed, seeds.env_seed, seeds.policy_seed)
            specs.append(EpisodeSpec(f"{group}-m{m:02d}", group, draw.task_id, seeds, "train", iteration,
                                     variant=variant, actor=actor))
    return specs


def paired_specs(specs: Sequence[EpisodeSpec], variant: str) -> list[EpisodeSpec]:
    """A paired copy of training episodes with another ``variant`` (SIRI's skill-augmented groups):
    same tasks, task seeds and env seeds (so the same starts), ``-{variant}`` appended to the group
    and episode ids, and policy seeds derived from the originals' and the variant name, so the
    pair's samples are independent and reproducible."""
    key = int.from_bytes(hashlib.blake2b(variant.encode(), digest_size=4).digest(), "big")
    out = []
    for spec in specs:
        member = spec.episode_id.rsplit("-m", 1)[-1]
        policy_seed = derive_seed(spec.seeds.policy_seed, "train", "policy", key)
        out.append(replace(spec, episode_id=f"{spec.group_id}-{variant}-m{member}", group_id=f"{spec.group_id}-{variant}",
                           variant=variant, seeds=EpisodeSeeds(spec.seeds.task_seed, spec.seeds.env_seed, policy_seed)))
    return out


def train_group_specs(task_ids: Sequence[str], *, run_seed: int, iteration: int, groups: int,
                      group_size: int) -> list[EpisodeSpec]:
    """The B x G episodes of one training iteration: group ``g`` plays a task drawn with its task seed
    (:func:`~siri_bench.seeding.sample_task_id`); its G members share task and env seed and differ in
    policy seed. Ids: ``train-i{iteration}-g{g}-m{m}``, groups ``train-i{iteration}-g{g}``."""
    specs = []
    for g in range(groups):
        seeds = [train_episode_seeds(run_seed, iteration, g, m) for m in range(group_size)]
        task = sample_task_id(list(task_ids), seeds[0].task_seed)
        group = f"train-i{iteration:06d}-g{g:04d}"
        specs += [EpisodeSpec(f"{group}-m{m:02d}", group, task, seeds[m], "train", iteration) for m in range(group_size)]
    return specs


@dataclass(frozen=True)
class RolloutSettings:
    """Everything the engine needs to know besides the pool, the policy and the algorithm."""

    env_id: str
    action_mode: str = "generate"
    sampling: SamplingParams = field(default_factory=SamplingParams)
    score_temperature: float = 1.0                  # tau of the candidate softmax (training distribution)
    score_sample_temperature: float | None = None   # None: sample at tau; 0: argmax (greedy evaluation)
    history_length: int = 2
    max_prompt_tokens: int = 4096
    validity: str = "admissible"
    invalid_action_penalty: float = 0.1
    invalid_format_limit: int | None = None
    invalid_action_limit: int | None = None
    anchor: str = "state"
    num_search_queries: int = 3
    max_steps: int | None = None                    # safety cap on top of the env's own step limit

    @classmethod
    def from_config(cls, cfg: Any, phase: str = "train") -> RolloutSettings:
        """Settings for an ExperimentConfig; ``phase`` 'eval' uses the ``eval.*`` decoding settings."""
        p, e = cfg.policy, cfg.eval
        if phase == "train":
            sampling = SamplingParams(p.temperature, p.top_p, p.max_new_tokens, tuple(p.stop))
            sample_tau = None
        else:
            sampling = SamplingParams(e.temperature, e.top_p, e.max_new_tokens or p.max_new_tokens, tuple(p.stop))
            sample_tau = e.score_temperature
        return cls(env_id=cfg.env.id, action_mode=p.action_mode, sampling=sampling,
                   score_temperature=p.score_temperature, score_sample_temperature=sample_tau,
                   history_length=p.history_length, max_prompt_tokens=p.max_prompt_tokens, validity=p.validity,
                   invalid_action_penalty=p.invalid_action_penalty, invalid_format_limit=p.invalid_format_limit,
                   invalid_action_limit=p.invalid_action_limit, anchor=cfg.env.anchor,
                   num_search_queries=p.score_search_queries, max_steps=cfg.env.max_steps)


# ----------------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------------
@dataclass
class RolloutResult:
    """Finished episodes (in spec order) and all their steps."""

    episodes: list[EpisodeRecord]
    #: wall seconds spent in env resets and steps, and in policy decisions (generation, scoring)
    env_s: float = 0.0
    policy_s: float = 0.0

    @property
    def steps(self) -> list[StepRecord]:
        return [s for e in self.episodes for s in e.steps]

    def episodes_frame(self, meta: Mapping[str, Any] | None = None) -> Any:
        return episodes_frame(self.episodes, meta or {})

    def steps_frame(self) -> Any:
        return steps_frame(self.steps)

    def transcript_frame(self) -> Any:
        return transcript_frame(self.steps)


# ----------------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------------
@dataclass
class _Live:
    """A running episode."""

    spec: EpisodeSpec
    slot: int
    observation: str
    info: dict[str, Any]
    task: str
    started: float
    history: list[HistoryEntry] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    seconds: float = 0.0
    format_errors: int = 0
    inadmissible: int = 0
    plan: list[str] | None = None      # expert episodes: the env's expert plan


@dataclass
class _Prepared:
    """One live episode's prompt for this step."""

    live: _Live
    prompt: Prompt
    prompt_ids: list[int]
    additions: list[str]
    seed: int
    candidate_ids: list[list[int]] = field(default_factory=list)


@dataclass
class _Decision:
    """The policy's answer for one prepared step."""

    output: str
    response_ids: list[int]
    logprobs: list[float]
    projection: Projection | None
    error: str | None = None
    status_on_error: str = "policy_error"
    candidates: list[str] = field(default_factory=list)
    candidate_probs: list[float] = field(default_factory=list)
    candidate_index: int = -1
    action_logprob: float | None = None


class RolloutEngine:
    """Plays episodes on an env pool with a policy (see the module docstring)."""

    def __init__(self, pool: EnvPoolLike, policy: Policy, settings: RolloutSettings, algorithm: Any = None):
        self.pool = pool
        self.policy = policy
        self.settings = settings
        self.algorithm = algorithm
        self.format = env_format_for(settings.env_id)
        self.builder = PromptBuilder(self.format, settings.action_mode, settings.history_length,  # type: ignore[arg-type]
                                     settings.num_search_queries)
        if settings.action_mode == "score" and not policy.supports_scoring:
            from siri_bench.errors import ConfigError

            raise ConfigError(f"policy.action_mode = 'score' is not supported by the {policy.backend} back end")

    # -- public --------------------------------------------------------------------------------
    def run(self, specs: Sequence[EpisodeSpec],
            on_episode_end: Callable[[EpisodeRecord], None] | None = None) -> RolloutResult:
        """Play every spec to its end; ``on_episode_end`` sees each episode as soon as it finishes."""
        pending = deque(specs)
        self._env_s = self._policy_s = 0.0
        free = list(range(self.pool.num_envs))
        live: dict[int, _Live] = {}
        done: dict[str, EpisodeRecord] = {}

        def finish(ep: _Live, status: str, error: str = "") -> None:
            record = self._episode_record(ep, status, error)
            done[ep.spec.episode_id] = record
            live.pop(ep.slot, None)
            free.append(ep.slot)
            free.sort()
            if self.algorithm is not None:
                self.algorithm.annotate_episode(record)
                self.algorithm.on_episode_end(record, ep.spec.phase)
            if on_episode_end is not None:
                on_episode_end(record)

        self.policy.before_rollout()
        try:
            while pending or live:
                if pending and free:
                    self._start(pending, free, live, finish)
                if live:
                    self._step_all(list(live.values()), finish)
        finally:
            self.policy.after_rollout()
        return RolloutResult([done[s.episode_id] for s in specs], env_s=self._env_s, policy_s=self._policy_s)

    # -- episode start -------------------------------------------------------------------------
    def _start(self, pending: deque, free: list[int], live: dict[int, _Live], finish: Callable) -> None:
        starts: list[tuple[int, EpisodeSpec]] = []
        while pending and free:
            starts.append((free.pop(0), pending.popleft()))
        t0 = time.monotonic()
        results = self.pool.reset([(slot, spec.seeds.env_seed, {"task_id": spec.task_id} if spec.task_id else None)
                                   for slot, spec in starts])
        self._env_s += time.monotonic() - t0
        share = (time.monotonic() - t0) / max(1, len(starts))
        for slot, spec in starts:
            res = results[slot]
            info = dict(res.info or {})
            ep = _Live(spec, slot, res.observation, info, str(info.get("task", "")), time.monotonic(),
                       seconds=share)
            live[slot] = ep
            if res.error:
                finish(ep, "env_error", str(res.error))
                continue
            if spec.actor == "expert":
                try:
                    ep.plan = [str(a) for a in self.pool.call("expert_plan", [slot])[slot]]
                except Exception as exc:  # noqa: BLE001 - an env without a plan fails the episode only
                    finish(ep, "env_error", f"expert_plan failed: {exc}")
            elif spec.actor != "policy":
                raise ValueError(f"episode {spec.episode_id}: unknown actor {spec.actor!r} (policy or expert)")

    # -- one step of every live episode ----------------------------------------------------------
    def _step_all(self, episodes: list[_Live], finish: Callable) -> None:
        t0 = time.monotonic()
        prepared: list[_Prepared] = []
        for ep in episodes:
            item = self._prepare(ep)
            if isinstance(item, str):
                finish(ep, "context_overflow" if item == "overflow" else "policy_error", item)
            else:
                prepared.append(item)
        if not prepared:
            return
        by_policy = [p for p in prepared if p.live.plan is None]
        by_expert = [p for p in prepared if p.live.plan is not None]
        answered = dict(zip(map(id, by_policy), self._decide(by_policy) if by_policy else []))
        answered.update(zip(map(id, by_expert), self._expert_decide(by_expert) if by_expert else []))
        decisions = [answered[id(p)] for p in prepared]
        self._policy_s += time.monotonic() - t0
        policy_share = (time.monotonic() - t0) / len(prepared)
        actions: dict[int, str] = {}
        acting: list[tuple[_Prepared, _Decision]] = []
        for item, dec in zip(prepared, decisions):
            if dec.error is not None or dec.projection is None:
                item.live.seconds += policy_share
                finish(item.live, dec.status_on_error, dec.error or "no decision")
                continue
            actions[item.live.slot] = dec.projection.env_action
            acting.append((item, dec))
        if not actions:
            return
        t1 = time.monotonic()
        results = self.pool.step(actions)
        self._env_s += time.monotonic() - t1
        env_share = (time.monotonic() - t1) / len(actions)
        for item, dec in acting:
            self._record(item, dec, results[item.live.slot], policy_share + env_share, finish)

    def _prepare(self, ep: _Live) -> _Prepared | str:
        """Build, encode and size-check one episode's prompt ("overflow" or an error text on failure)."""
        admissible = list(ep.info.get("admissible_actions") or [])
        step = len(ep.steps)
        additions: list[str] = []
        if self.algorithm is not None:
            from algorithms.base import PromptContext

            ctx = PromptContext(
                env_id=self.settings.env_id, task_id=str(ep.info.get("task_id", ep.spec.task_id or "")),
                task_type=str(ep.info.get("task_type", "")), task=ep.task, step=step, observation=ep.observation,
                admissible_actions=tuple(admissible), phase=ep.spec.phase, episode_id=ep.spec.episode_id,  # type: ignore[arg-type]
                group_id=ep.spec.group_id, trial=ep.spec.trial, variant=ep.spec.variant,
                history=tuple((h.observation, h.action) for h in ep.history))
            additions = [a for a in (self.algorithm.prompt_additions(ctx) or []) if a]
        tok = self.policy.tokenizer
        built = build_step_prompt(self.builder, tok, self.settings.max_prompt_tokens, task=ep.task,
                                  observation=ep.observation, admissible=admissible, history=ep.history,
                                  additions=additions)
        if built is None:
            return "overflow"
        prompt, ids = built
        seed = step_seed(ep.spec.seeds.policy_seed, step)
        item = _Prepared(ep, prompt, ids, additions, seed)
        if self.settings.action_mode == "score":
            if not prompt.actions:
                return "no candidate actions to score"
            item.candidate_ids = candidate_token_ids(tok, prompt.actions)
        return item

    def _decide(self, prepared: list[_Prepared]) -> list[_Decision]:
        """One batched policy call for all prepared steps."""
        rules = self.format.rules
        if self.settings.action_mode == "score":
            try:
                scores = self.policy.score([p.prompt_ids for p in prepared], [p.candidate_ids for p in prepared])
            except Exception as exc:  # noqa: BLE001 - a failing back end fails these episodes, not the run
                log.exception("policy scoring failed")
                return [_Decision("", [], [], None, error=f"{type(exc).__name__}: {exc}") for _ in prepared]
            out = []
            for item, sc in zip(prepared, scores):
                choice = choose_candidate(sc, temperature=self.settings.score_temperature, seed=item.seed,
                                          sample_temperature=self.settings.score_sample_temperature)
                action = item.prompt.actions[choice.index]
                out.append(_Decision(
                    output=f"{item.prompt.response_prefix}{action}</action>",
                    response_ids=list(sc.token_ids[choice.index]),
                    logprobs=[float(x) for x in sc.token_logprobs[choice.index]],
                    projection=project_choice(action, item.live.info.get("admissible_actions") or [], rules),
                    candidates=list(item.prompt.actions), candidate_probs=[float(x) for x in choice.probs],
                    candidate_index=choice.index, action_logprob=choice.log_prob))
            return out
        requests = [GenerationRequest(p.prompt_ids, p.seed, chat_messages(p.prompt), p.prompt.response_prefix)
                    for p in prepared]
        try:
            completions = self.policy.generate(requests, self.settings.sampling)
        except Exception as exc:  # noqa: BLE001
            log.exception("policy generation failed")
            return [_Decision("", [], [], None, error=f"{type(exc).__name__}: {exc}") for _ in prepared]
        out = []
        for item, comp in zip(prepared, completions):
            if comp.error is not None:
                status = "context_overflow" if comp.error.startswith("context_overflow") else "policy_error"
                out.append(_Decision(comp.text, [], [], None, error=comp.error, status_on_error=status))
                continue
            admissible = item.live.info.get("admissible_actions") or []
            out.append(_Decision(comp.text, list(comp.response_ids), list(comp.logprobs),
                                 project(comp.text, admissible, rules, self.settings.validity)))  # type: ignore[arg-type]
        return out

    def _expert_decide(self, prepared: list[_Prepared]) -> list[_Decision]:
        """The expert plan's next action for each prepared step, recorded as the policy's response
        (see the module docstring), with the policy's log-probs of it."""
        rules = self.format.rules
        actions: list[str | None] = []
        for item in prepared:
            plan, step = item.live.plan or [], len(item.live.steps)
            actions.append(plan[step] if step < len(plan) else None)
        out: list[_Decision | None] = [
            None if a is not None else _Decision("", [], [], None, error="the expert plan ended before the episode")
            for a in actions]
        todo = [k for k, a in enumerate(actions) if a is not None]
        if not todo:
            return [d for d in out if d is not None]
        try:
            if self.settings.action_mode == "score":
                scores = self.policy.score([prepared[k].prompt_ids for k in todo],
                                           [prepared[k].candidate_ids for k in todo])
                for k, sc in zip(todo, scores):
                    item, action = prepared[k], str(actions[k])
                    logp = log_softmax(sc.sums / self.settings.score_temperature)
                    index = item.prompt.actions.index(action) if action in item.prompt.actions else -1
                    ids = (list(sc.token_ids[index]) if index >= 0
                           else candidate_token_ids(self.policy.tokenizer, [action])[0])
                    lps = [float(x) for x in sc.token_logprobs[index]] if index >= 0 else [0.0] * len(ids)
                    proj = project_choice(action, item.live.info.get("admissible_actions") or [], rules)
                    out[k] = _Decision(f"{item.prompt.response_prefix}{action}</action>", ids, lps,
                                       replace(proj, env_action=action), candidates=list(item.prompt.actions),
                                       candidate_probs=[float(x) for x in np.exp(logp)], candidate_index=index,
                                       action_logprob=float(logp[index]) if index >= 0 else None)
            else:
                tok = self.policy.tokenizer
                eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
                texts = {k: expert_response(str(actions[k])) for k in todo}
                responses = {k: list(tok(texts[k], add_special_tokens=False).input_ids) + eos for k in todo}
                rows = self.policy.logprobs([prepared[k].prompt_ids for k in todo], [responses[k] for k in todo]).rows()
                for k, row in zip(todo, rows):
                    item = prepared[k]
                    proj = project(texts[k], item.live.info.get("admissible_actions") or [], rules,
                                   self.settings.validity)  # type: ignore[arg-type]
                    out[k] = _Decision(texts[k], responses[k], [float(x) for x in row.tolist()],
                                       replace(proj, env_action=str(actions[k])))
        except Exception as exc:  # noqa: BLE001 - a failing back end fails these episodes, not the run
            log.exception("policy scoring of expert actions failed")
            for k in todo:
                out[k] = _Decision("", [], [], None, error=f"{type(exc).__name__}: {exc}")
        return [d for d in out if d is not None]

    # -- recording -------------------------------------------------------------------------------
    def _anchor(self, ep: _Live) -> str:
        if self.settings.anchor == "observation":
            return ep.observation
        anchor = ep.info.get("anchor_state")
        if anchor is None:
            raise KeyError(f"env {self.settings.env_id} gives no info['anchor_state']; use env.anchor: observation")
        return str(anchor)

    def _record(self, item: _Prepared, dec: _Decision, res: Any, seconds: float, finish: Callable) -> None:
        ep = item.live
        proj = dec.projection
        assert proj is not None
        error = getattr(res, "error", None)
        info = dict(res.info or {})
        won = bool(info.get("won", False)) and not error
        record = StepRecord(
            episode_id=ep.spec.episode_id, group_id=ep.spec.group_id,
            task_id=str(ep.info.get("task_id", ep.spec.task_id or "")), task_uid=str(ep.info.get("task_uid", "")),
            task_type=str(ep.info.get("task_type", "")), phase=ep.spec.phase, step=len(ep.steps),
            observation=ep.observation, prompt_template=item.prompt.template_id, with_history=item.prompt.with_history,
            prompt_additions=list(item.additions), prompt_ids=list(item.prompt_ids),
            response_ids=dec.response_ids, action_mask=[1] * len(dec.response_ids), sample_logprobs=dec.logprobs,
            output=dec.output, parsed_action=proj.parsed_action, action=proj.env_action, valid=proj.valid,
            format_ok=proj.format_ok, admissible=proj.admissible, invalid_reason=proj.reason,
            penalty=0.0 if proj.valid else self.settings.invalid_action_penalty,
            reward=0.0 if error else float(res.reward), done=False, terminated=bool(res.terminated),
            truncated=bool(res.truncated), won=won, score=float(info.get("score", 0.0) or 0.0),
            anchor=self._anchor(ep), admissible_count=len(ep.info.get("admissible_actions") or []),
            action_mode=self.settings.action_mode, seed=item.seed, candidates=dec.candidates,
            candidate_ids=item.candidate_ids if dec.candidates else [], candidate_probs=dec.candidate_probs,
            candidate_index=dec.candidate_index, action_logprob=dec.action_logprob, seconds=seconds,
            task=ep.task, admissible_actions=list(ep.info.get("admissible_actions") or []),
            history=list(ep.history), variant=ep.spec.variant, actor=ep.spec.actor)
        ep.steps.append(record)
        ep.seconds += seconds
        ep.history.append(HistoryEntry(self.builder.format_observation(ep.observation, ep.task), proj.env_action))
        if proj.parse_failed:
            ep.format_errors += 1
        elif not proj.admissible:
            ep.inadmissible += 1
        status = self._status_after(ep, res, won)
        if error:
            status = "env_error"
        if status is None:
            ep.observation, ep.info = res.observation, info
            return
        record.done = True
        finish(ep, status, str(error or ""))

    def _status_after(self, ep: _Live, res: Any, won: bool) -> str | None:
        """The status of an episode that ends with this step (None if it goes on)."""
        s = self.settings
        if res.terminated:
            return "success" if won else "failure"
        if s.invalid_action_limit is not None and ep.inadmissible >= s.invalid_action_limit:
            return "invalid_action"
        if s.invalid_format_limit is not None and ep.format_errors >= s.invalid_format_limit:
            return "invalid_format"
        if res.truncated or (s.max_steps is not None and len(ep.steps) >= s.max_steps):
            return "invalid_format" if ep.format_errors == len(ep.steps) else "step_limit"
        return None

    def _episode_record(self, ep: _Live, status: str, error: str) -> EpisodeRecord:
        steps = ep.steps
        last = steps[-1] if steps else None
        info = ep.info
        return EpisodeRecord(
            episode_id=ep.spec.episode_id, group_id=ep.spec.group_id,
            task_id=str(info.get("task_id", ep.spec.task_id or "")), task_uid=str(info.get("task_uid", "")),
            task_type=str(info.get("task_type", "")), task=ep.task, phase=ep.spec.phase,
            iteration=ep.spec.iteration, trial=ep.spec.trial, variant=ep.spec.variant,
            task_seed=ep.spec.seeds.task_seed, env_seed=ep.spec.seeds.env_seed, policy_seed=ep.spec.seeds.policy_seed,
            status=status, won=status == "success", score=float(last.score) if last is not None else 0.0,
            return_=float(sum(s.reward for s in steps)), num_steps=len(steps),
            invalid_steps=sum(1 for s in steps if not s.valid), format_errors=ep.format_errors,
            inadmissible_steps=ep.inadmissible, prompt_tokens=sum(s.prompt_tokens for s in steps),
            completion_tokens=sum(s.completion_tokens for s in steps), seconds=ep.seconds,
            additions_steps=sum(1 for s in steps if s.prompt_additions),
            additions_chars=sum(len(a) for s in steps for a in s.prompt_additions),
            action_mode=self.settings.action_mode, error=error, steps=list(steps))


# ----------------------------------------------------------------------------------------------
# Prompts of a step: building, and rebuilding from a record
# ----------------------------------------------------------------------------------------------
def candidate_token_ids(tokenizer: Any, actions: Sequence[str]) -> list[list[int]]:
    """Score-mode continuations: each candidate action followed by the closing action tag."""
    return [list(tokenizer(a + "</action>", add_special_tokens=False).input_ids) for a in actions]


def build_step_prompt(builder: PromptBuilder, tokenizer: Any, max_prompt_tokens: int, *, task: str,
                      observation: str, admissible: Sequence[str], history: Sequence[HistoryEntry],
                      additions: Sequence[str] = ()) -> tuple[Prompt, list[int]] | None:
    """A step's prompt and token ids; without the history when the prompt is too long with it;
    None when it does not fit ``max_prompt_tokens`` even then. (No tokenizer: ids are [].)"""
    prompt = builder.build(task=task, observation=observation, admissible=admissible, history=history,
                           additions=additions)
    ids = encode_prompt(tokenizer, prompt) if tokenizer is not None else []
    if tokenizer is not None and len(ids) > max_prompt_tokens and prompt.with_history:
        prompt = builder.build(task=task, observation=observation, admissible=admissible, history=history,
                               additions=additions, with_history=False)
        ids = encode_prompt(tokenizer, prompt)
    if tokenizer is not None and len(ids) > max_prompt_tokens:
        return None
    return prompt, ids


def rebuild_prompt_ids(step: StepRecord, settings: RolloutSettings, tokenizer: Any,
                       additions: Sequence[str] = ()) -> list[int] | None:
    """The prompt ids of a recorded step rebuilt with ``additions`` (default: none, i.e. the plain
    prompt the policy would have seen without an algorithm's additions). Same template, task,
    observation, admissible actions and history as the step; the history is dropped only if the
    rebuilt prompt does not fit ``settings.max_prompt_tokens`` with it; None if it does not fit
    at all. In score mode the candidates (and so ``step.candidate_ids``) are unchanged."""
    builder = PromptBuilder(env_format_for(settings.env_id), settings.action_mode,  # type: ignore[arg-type]
                            settings.history_length, settings.num_search_queries)
    built = build_step_prompt(builder, tokenizer, settings.max_prompt_tokens, task=step.task,
                              observation=step.observation, admissible=step.admissible_actions,
                              history=step.history, additions=additions)
    return None if built is None else built[1]

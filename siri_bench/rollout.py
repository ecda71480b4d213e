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
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from siri_bench.parsing import Projection, project, project_choice
from siri_bench.policy.base import GenerationRequest, Policy, SamplingParams
from siri_bench.policy.scoring import choose_candidate
from siri_bench.prompts import (
    HistoryEntry,
    Prompt,
    PromptBuilder,
    chat_messages,
    encode_prompt,
    env_format_for,
)
from siri_bench.records import EpisodeRecord, StepRecord, episodes_frame, steps_frame, transcript_frame
from siri_bench.seeding import EpisodeSeeds, sample_task_id, step_seed, train_episode_seeds

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
        return RolloutResult([done[s.episode_id] for s in specs])

    # -- episode start -------------------------------------------------------------------------
    def _start(self, pending: deque, free: list[int], live: dict[int, _Live], finish: Callable) -> None:
        starts: list[tuple[int, EpisodeSpec]] = []
        while pending and free:
            starts.append((free.pop(0), pending.popleft()))
        t0 = time.monotonic()
        results = self.pool.reset([(slot, spec.seeds.env_seed, {"task_id": spec.task_id} if spec.task_id else None)
                                   for slot, spec in starts])
        share = (time.monotonic() - t0) / max(1, len(starts))
        for slot, spec in starts:
            res = results[slot]
            info = dict(res.info or {})
            ep = _Live(spec, slot, res.observation, info, str(info.get("task", "")), time.monotonic(),
                       seconds=share)
            live[slot] = ep
            if res.error:
                finish(ep, "env_error", str(res.error))

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
        decisions = self._decide(prepared)
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
        prompt = self.builder.build(task=ep.task, observation=ep.observation, admissible=admissible,
                                    history=ep.history, additions=additions)
        ids = encode_prompt(tok, prompt) if tok is not None else []
        if tok is not None and len(ids) > self.settings.max_prompt_tokens and prompt.with_history:
            prompt = self.builder.build(task=ep.task, observation=ep.observation, admissible=admissible,
                                        history=ep.history, additions=additions, with_history=False)
            ids = encode_prompt(tok, prompt)
        if tok is not None and len(ids) > self.settings.max_prompt_tokens:
            return "overflow"
        seed = step_seed(ep.spec.seeds.policy_seed, step)
        item = _Prepared(ep, prompt, ids, additions, seed)
        if self.settings.action_mode == "score":
            if not prompt.actions:
                return "no candidate actions to score"
            item.candidate_ids = [list(tok(a + "</action>", add_special_tokens=False).input_ids)
                                  for a in prompt.actions]
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
            candidate_index=dec.candidate_index, action_logprob=dec.action_logprob, seconds=seconds)
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

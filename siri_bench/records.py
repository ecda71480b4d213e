"""Trajectory records: one :class:`StepRecord` per environment step, one :class:`EpisodeRecord` per
episode, and their conversion to pandas tables.

The step table is what the RL core consumes (one row per step: ``episode_id``, ``group_id``,
``step``, ``reward``, ``penalty``, ``anchor``, ``valid``, plus the token ids, the action-token mask
and the sampling log-probs the loss needs) and what transcripts are written from. The episode table
has the columns of :data:`siri_bench.store.EPISODE_COLUMNS` first.

Token layout of a step: ``prompt_ids`` is the full prompt (chat template, and in score mode the
``<action>`` response prefix); ``response_ids`` is what the policy produced (generate mode: the
sampled tokens, EOS included when it was sampled; score mode: the chosen candidate's tokens,
``<action text></action>``); ``action_mask[j]`` is 1 where the loss may touch ``response_ids[j]``;
``sample_logprobs[j]`` is the log-prob of ``response_ids[j]`` at sampling time under the unmodified
model (see :mod:`siri_bench.policy.base`). In score mode the step's training log-prob is
``action_logprob`` (log-softmax of the chosen candidate among ``candidate_ids``), and
:func:`behaviour_logprobs` returns it in the same [rows x tokens] layout as generate mode uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from siri_bench.store import EPISODE_COLUMNS, STEP_COLUMNS


@dataclass
class StepRecord:
    """One environment step of one episode."""

    episode_id: str
    group_id: str
    task_id: str
    task_uid: str
    task_type: str
    phase: str
    step: int                                   # 0-based index in the episode
    observation: str                            # raw observation the action answered
    prompt_template: str                        # template id (e.g. "alfworld.generate/v1")
    with_history: bool
    prompt_additions: list[str]                 # algorithm additions inserted into the prompt
    prompt_ids: list[int]
    response_ids: list[int]
    action_mask: list[int]
    sample_logprobs: list[float]
    output: str                                 # the full model output (score mode: "<action>...</action>")
    parsed_action: str | None                   # text inside the action tags (None: no tags)
    action: str                                 # what the environment received
    valid: bool
    format_ok: bool                             # verl-agent's validity (tags, no CJK)
    admissible: bool
    invalid_reason: str
    penalty: float                              # invalid-action penalty of this step (0 when valid)
    reward: float                               # the env's native reward of this step
    done: bool
    terminated: bool
    truncated: bool
    won: bool
    score: float
    anchor: str                                 # GiGPO's step-group key of the state acted in
    admissible_count: int
    action_mode: str
    seed: int                                   # the step's sampling seed
    candidates: list[str] = field(default_factory=list)          # score mode
    candidate_ids: list[list[int]] = field(default_factory=list)  # score mode
    candidate_probs: list[float] = field(default_factory=list)    # score mode: softmax(s / tau)
    candidate_index: int = -1                                     # score mode
    action_logprob: float | None = None                           # score mode: log p(chosen)
    seconds: float = 0.0                        # this step's share of policy and env wall time
    # what the prompt was built from, so that it can be rebuilt (e.g. without the additions:
    # :func:`siri_bench.rollout.rebuild_prompt_ids`)
    task: str = ""                                                # the task sentence
    admissible_actions: list[str] = field(default_factory=list)   # admissible actions at this step
    history: list[Any] = field(default_factory=list)              # HistoryEntry of every earlier step
    variant: str = "plain"                                        # the episode's variant ("skill", ...)
    actor: str = "policy"                                         # "policy" or "expert" (SFT demonstrations)

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt_ids)

    @property
    def completion_tokens(self) -> int:
        return len(self.response_ids)


@dataclass
class EpisodeRecord:
    """One finished episode (``steps`` holds its step records; it is not a table column)."""

    episode_id: str
    group_id: str
    task_id: str
    task_uid: str
    task_type: str
    task: str
    phase: str
    iteration: int
    trial: int
    variant: str
    task_seed: int
    env_seed: int
    policy_seed: int
    status: str                                 # one of siri_bench.store.EPISODE_STATUSES
    won: bool
    score: float
    return_: float                              # sum of native rewards (column "return")
    num_steps: int                              # column "steps"
    invalid_steps: int
    format_errors: int                          # steps with no parseable action
    inadmissible_steps: int                     # parsed but not admissible
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    additions_steps: int                        # steps whose prompt had algorithm additions
    additions_chars: int                        # characters the additions put into prompts
    action_mode: str
    error: str = ""
    steps: list[StepRecord] = field(default_factory=list, repr=False)
    #: extra columns of the episode's row, set by the algorithm (memory_scope, position, the
    #: reflection it wrote, the memories it retrieved, ...)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def steps_frame(steps: Iterable[StepRecord]) -> pd.DataFrame:
    """The step table: one row per step, every field of :class:`StepRecord` plus token counts."""
    rows = []
    for s in steps:
        row = {f.name: getattr(s, f.name) for f in fields(s)}
        row["prompt_tokens"] = s.prompt_tokens
        row["completion_tokens"] = s.completion_tokens
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=[f.name for f in fields(StepRecord)] + ["prompt_tokens", "completion_tokens"])
    return pd.DataFrame(rows)


def transcript_frame(steps: Iterable[StepRecord]) -> pd.DataFrame:
    """Step transcripts as stored in run folders (:func:`siri_bench.transcripts.steps_frame`: the
    :data:`~siri_bench.store.STEP_COLUMNS`, typed, long texts cut)."""
    from siri_bench.transcripts import steps_frame as transcript_steps_frame

    return transcript_steps_frame(
        {**{c: getattr(s, c) for c in STEP_COLUMNS if hasattr(s, c)},
         "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens} for s in steps)


def episodes_frame(episodes: Iterable[EpisodeRecord], meta: Mapping[str, Any]) -> pd.DataFrame:
    """The episode table: :data:`~siri_bench.store.EPISODE_COLUMNS` first, then extra columns.

    ``meta`` gives the run-level columns (run, algorithm, env, split, seed)."""
    rows = []
    for e in episodes:
        row = {f.name: getattr(e, f.name) for f in fields(e) if f.name not in ("steps", "extra")}
        row.update({k: v for k, v in e.extra.items() if k not in row})
        row["return"] = row.pop("return_")
        row["steps"] = row.pop("num_steps")
        row["tokens"] = e.tokens
        rows.append({**{k: meta.get(k) for k in ("run", "algorithm", "env", "split", "seed")}, **row})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(EPISODE_COLUMNS))
    return frame[list(EPISODE_COLUMNS) + [c for c in frame.columns if c not in EPISODE_COLUMNS]]


def behaviour_logprobs(steps: Sequence[StepRecord]) -> tuple[list[list[float]], list[list[int]]]:
    """Sampling-time log-probs of the loss units of each step, with their mask.

    Generate mode: per response token (``sample_logprobs``, ``action_mask``). Score mode: one unit,
    the chosen candidate's log-softmax among the candidates (``[action_logprob]``, ``[1]``).
    """
    values, masks = [], []
    for s in steps:
        if s.action_mode == "score":
            values.append([float(s.action_logprob if s.action_logprob is not None else 0.0)])
            masks.append([1])
        else:
            values.append(list(s.sample_logprobs))
            masks.append(list(s.action_mask))
    return values, masks


def current_logprobs(policy: Any, steps: Sequence[StepRecord], *, grad: bool = True,
                     temperature: float = 1.0, with_entropy: bool = False,
                     prompt_ids: Sequence[Sequence[int]] | None = None) -> Any:
    """Log-probs of the loss units of ``steps`` under the policy's current weights.

    Returns a :class:`~siri_bench.policy.base.TokenLogProbs` in the layout of
    :func:`behaviour_logprobs`: per response token in generate mode, one column (the candidate
    log-softmax at ``temperature``, i.e. ``policy.score_temperature``) in score mode. All steps must
    share one action mode. ``with_entropy`` adds the entropy of the next-token distribution per
    token (generate mode) or of the candidate distribution (score mode). ``prompt_ids`` replaces
    the recorded prompts (e.g. the plain prompts of skill-guided steps, SIRI's internalization).
    """
    import torch

    from siri_bench.policy.base import TokenLogProbs

    modes = {s.action_mode for s in steps}
    if len(modes) > 1:
        raise ValueError(f"steps mix action modes {sorted(modes)}")
    prompts = [list(p) for p in prompt_ids] if prompt_ids is not None else [s.prompt_ids for s in steps]
    if len(prompts) != len(steps):
        raise ValueError(f"got {len(prompts)} prompts for {len(steps)} steps")
    if modes == {"score"}:
        if any(s.candidate_index < 0 for s in steps):
            raise ValueError("a score-mode step without a chosen candidate has no loss unit")
        if with_entropy:
            dists = policy.candidate_log_softmax(prompts, [s.candidate_ids for s in steps],
                                                 temperature=temperature, grad=grad)
            values = torch.stack([d[s.candidate_index] for d, s in zip(dists, steps)]).reshape(-1, 1)
            entropy = torch.stack([-(d.exp() * d).sum() for d in dists]).reshape(-1, 1)
            return TokenLogProbs(values, torch.ones_like(values, dtype=torch.bool), entropy)
        values = policy.candidate_logprobs(prompts, [s.candidate_ids for s in steps],
                                           [s.candidate_index for s in steps], temperature=temperature, grad=grad)
        values = values.reshape(-1, 1)
        return TokenLogProbs(values, torch.ones_like(values, dtype=torch.bool))
    out = policy.logprobs(prompts, [s.response_ids for s in steps], grad=grad, with_entropy=with_entropy)
    mask = torch.zeros_like(out.mask)
    for i, s in enumerate(steps):
        mask[i, :len(s.action_mask)] = torch.tensor(s.action_mask, dtype=torch.bool, device=mask.device)
    return TokenLogProbs(out.values, out.mask & mask, out.entropy)


def loss_unit_count(step: StepRecord) -> int:
    """How many loss units (action tokens; 1 in score mode) a step contributes."""
    if step.action_mode == "score":
        return 1 if step.candidate_index >= 0 else 0
    return int(sum(step.action_mask))

"""Fixtures of the training tests: the tiny random model and hand-made step records."""

from __future__ import annotations

import pytest
import torch

from siri_bench.config import PolicyConfig
from siri_bench.policy import HFPolicy, build_policy
from siri_bench.records import StepRecord
from siri_bench.rollout import candidate_token_ids

# tiny matrices: one intra-op thread avoids spin-waiting on a shared machine, and keeps sums in one order
torch.set_num_threads(1)


def tiny_policy(**overrides) -> HFPolicy:
    policy = build_policy(PolicyConfig(model="tiny-random", device="cpu", **overrides), trainable=True)
    assert isinstance(policy, HFPolicy)
    return policy


@pytest.fixture()
def policy() -> HFPolicy:
    return tiny_policy()


def make_step(policy: HFPolicy, prompt: str, response: str = "", *, episode: str = "e0", group: str = "g0",
              step: int = 0, mode: str = "generate", candidates: tuple[str, ...] = (), chosen: int = 0,
              valid: bool = True, mask: list[int] | None = None) -> StepRecord:
    """A step record whose token fields come from real text (the other fields are plausible filler)."""
    tok = policy.tokenizer
    prompt_ids = list(tok(prompt, add_special_tokens=False).input_ids)
    cand_ids: list[list[int]] = []
    if mode == "score":
        cand_ids = candidate_token_ids(tok, candidates)
        response_ids = cand_ids[chosen]
    else:
        response_ids = list(tok(response, add_special_tokens=False).input_ids)
    return StepRecord(
        episode_id=episode, group_id=group, task_id="t", task_uid="u", task_type="x", phase="train", step=step,
        observation=prompt, prompt_template="test", with_history=False, prompt_additions=[], prompt_ids=prompt_ids,
        response_ids=response_ids, action_mask=mask if mask is not None else [1] * len(response_ids),
        sample_logprobs=[0.0] * len(response_ids), output=response, parsed_action=None, action="", valid=valid,
        format_ok=valid, admissible=valid, invalid_reason="", penalty=0.0 if valid else 0.1, reward=0.0, done=False,
        terminated=False, truncated=False, won=False, score=0.0, anchor=prompt, admissible_count=len(candidates),
        action_mode=mode, seed=0, candidates=list(candidates), candidate_ids=cand_ids,
        candidate_index=chosen if mode == "score" else -1, action_logprob=0.0 if mode == "score" else None)

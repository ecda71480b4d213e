"""Internalization: the trajectory gate, the action-level selection on GiGPO advantages of the
skill-augmented group, the weights of every weighting mode, the lambda schedule, and the loss
(which tokens get which weight; the loss's prompt is the plain one)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from algorithms.estimators import compute
from algorithms.siri.internalization import (
    SkillGroupInfo,
    internalization_loss,
    internalization_weights,
    lambda_int,
    passes_gate,
    step_weight,
)
from siri_bench.config import PolicyConfig
from siri_bench.policy import build_policy
from siri_bench.prompts import ALFWORLD_FORMAT, PromptBuilder, encode_prompt
from siri_bench.records import StepRecord

torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------------
# schedule, gate, weights
# ----------------------------------------------------------------------------------------------
def test_lambda_schedule_by_hand():
    assert lambda_int(7, None, 1.0, 10) == 0.0                # no internalization yet
    assert lambda_int(4, 5, 1.0, 10) == 0.0
    assert lambda_int(5, 5, 1.0, 10) == pytest.approx(0.1)    # k = 1
    assert lambda_int(9, 5, 2.0, 10) == pytest.approx(1.0)    # k = 5: 2.0 * 5/10
    assert lambda_int(14, 5, 1.0, 10) == pytest.approx(1.0)   # k = 10
    assert lambda_int(40, 5, 0.5, 10) == pytest.approx(0.5)   # capped
    assert lambda_int(5, 5, 0.7, 0) == pytest.approx(0.7)     # no warm-up


def test_trajectory_gate():
    assert passes_gate("active", -0.5, 1.0, 0.5, gate_threshold=0.0)         # active: U does not matter
    assert not passes_gate("active", 0.9, 0.4, 0.5, gate_threshold=0.0)      # below the plain mean
    assert passes_gate("active", 0.9, 0.5, 0.5, gate_threshold=0.0)          # equal to it is enough
    assert passes_gate("candidate", 0.01, 1.0, 0.0, gate_threshold=0.0)      # U > gate_threshold
    assert not passes_gate("candidate", 0.0, 1.0, 0.0, gate_threshold=0.0)   # U = threshold: not above
    assert not passes_gate("retired", 1.0, 1.0, 0.0, gate_threshold=-1.0)


# (U, A) cases: U is clipped to [0, 1]; A <= 0 always gives 0
CASES = [(0.5, 1.2), (0.5, 0.0), (0.5, -0.3), (1.7, 0.5)]


@pytest.mark.parametrize("weighting,expected", [
    ("both", [0.5 * 1.2, 0.0, 0.0, 1.0 * 0.5]),
    ("utility", [0.5, 0.0, 0.0, 1.0]),
    ("advantage", [1.2, 0.0, 0.0, 0.5]),
    ("none", [1.0, 0.0, 0.0, 1.0]),
])
def test_step_weight_modes(weighting, expected):
    assert [step_weight(u, a, weighting) for u, a in CASES] == pytest.approx(expected)
    assert step_weight(-0.4, 2.0, "both") == 0.0 and step_weight(-0.4, 2.0, "utility") == 0.0
    assert step_weight(-0.4, 2.0, "advantage") == 2.0


def skill_table() -> pd.DataFrame:
    """One plain group and its paired skill group (one-step episodes, distinct anchors, so GiGPO's step
    level is 0 and A = A_episode); skill returns 1, 0.6, 0 and plain returns 1, 0.6 (mean 0.8)."""
    rows = []
    for e, r in (("s-a", 1.0), ("s-b", 0.6), ("s-c", 0.0)):
        rows.append({"episode_id": e, "group_id": "G-skill", "variant": "skill", "step": 0, "reward": r,
                     "anchor": e})
    for e, r in (("p-a", 1.0), ("p-b", 0.6)):
        rows.append({"episode_id": e, "group_id": "G-plain", "variant": "plain", "step": 0, "reward": r,
                     "anchor": e})
    return pd.DataFrame(rows)


def test_weights_gate_selection_and_weighting_by_hand():
    steps = skill_table()
    adv = compute("gigpo", steps, gamma=0.95, omega=1.0, norm="std")
    # skill group: mean 0.53333, deviations 0.46667, 0.06667, -0.53333, std (ddof 1) 0.50332
    std = math.sqrt((0.46667 ** 2 + 0.06667 ** 2 + 0.53333 ** 2) / 2)
    assert adv[:3] == pytest.approx([0.46667 / std, 0.06667 / std, -0.53333 / std], abs=1e-4)
    values = dict(zip(steps["episode_id"], steps["reward"]))
    groups = {"G-skill": SkillGroupInfo("skill-0001", "active", 0.4, plain_mean=0.8)}
    res = internalization_weights(steps, adv, groups, values, gate=True, gate_threshold=0.0, weighting="both")
    # s-a: R 1 >= 0.8, A 0.92717 > 0 -> 0.4 * 0.92717; s-b: A > 0 but R 0.6 < 0.8 -> gated out; s-c: A < 0
    assert res.weights == pytest.approx([0.4 * 0.46667 / std, 0.0, 0.0, 0.0, 0.0], abs=1e-4)
    assert res.eligible_episodes == ["s-a"] and res.gated_out_episodes == ["s-b", "s-c"] and res.kept_steps == 1
    # gate off: s-b's positive advantage counts too; plain rows never get a weight
    off = internalization_weights(steps, adv, groups, values, gate=False, gate_threshold=0.0, weighting="both")
    assert off.weights == pytest.approx([0.4 * 0.46667 / std, 0.4 * 0.06667 / std, 0.0, 0.0, 0.0], abs=1e-4)
    none = internalization_weights(steps, adv, groups, values, gate=False, gate_threshold=0.0, weighting="none")
    assert none.weights.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    # a retired skill's rollouts are never used, gate or not
    retired = {"G-skill": SkillGroupInfo("skill-0001", "retired", 0.4, plain_mean=0.0)}
    assert internalization_weights(steps, adv, retired, values, gate=False, gate_threshold=0.0,
                                   weighting="none").weights.sum() == 0.0


def test_weights_use_gigpo_step_level_advantages():
    """Two 2-step skill episodes sharing the first state: A = A_episode + A_step by hand."""
    steps = pd.DataFrame([
        {"episode_id": "a", "group_id": "S", "variant": "skill", "step": 0, "reward": 0.0, "anchor": "s0"},
        {"episode_id": "a", "group_id": "S", "variant": "skill", "step": 1, "reward": 1.0, "anchor": "s1"},
        {"episode_id": "b", "group_id": "S", "variant": "skill", "step": 0, "reward": 0.0, "anchor": "s0"},
        {"episode_id": "b", "group_id": "S", "variant": "skill", "step": 1, "reward": 0.0, "anchor": "s2"},
    ])
    adv = compute("gigpo", steps, gamma=0.95, omega=1.0, norm="std")
    r = 1 / math.sqrt(2)     # (x - mean) / std of two values is +-1/sqrt(2)
    assert adv == pytest.approx([2 * r, r, -2 * r, -r], abs=1e-5)
    res = internalization_weights(steps, adv, {"S": SkillGroupInfo("k", "active", 0.5, 0.0)}, {"a": 1.0, "b": 0.0},
                                  gate=True, gate_threshold=0.0, weighting="both")
    assert res.weights == pytest.approx([0.5 * 2 * r, 0.5 * r, 0.0, 0.0], abs=1e-5)


# ----------------------------------------------------------------------------------------------
# the loss
# ----------------------------------------------------------------------------------------------
SKILL_TEXT = "Skill: clean first\nWhen to use: cleaning tasks\nSteps:\n1. take the mug\n2. clean the mug"


@pytest.fixture(scope="module")
def tiny():
    return build_policy(PolicyConfig(model="tiny-random", device="cpu"))


def make_step(tok, *, step: int, additions: list[str], response: str, mask: list[int] | None = None,
              mode: str = "generate", candidates: list[str] | None = None, chosen: int = -1) -> tuple[StepRecord, list[int]]:
    builder = PromptBuilder(ALFWORLD_FORMAT, mode, history_length=2)
    kw = dict(task="put a clean mug in desk.", observation=f"You arrive at desk {step + 1}.",
              admissible=["go to desk 1", "take mug 1 from desk 1", "look"])
    skill_prompt = builder.build(**kw, additions=additions)
    plain_prompt = builder.build(**kw)
    response_ids = list(tok(response, add_special_tokens=False).input_ids)
    cand_ids = [list(tok(c + "</action>", add_special_tokens=False).input_ids) for c in (candidates or [])]
    record = StepRecord(
        episode_id="val-skill-m0", group_id="val-skill", task_id="t", task_uid="u", task_type="clean", phase="train",
        step=step, observation=kw["observation"], prompt_template=skill_prompt.template_id, with_history=False,
        prompt_additions=list(additions), prompt_ids=encode_prompt(tok, skill_prompt),
        response_ids=cand_ids[chosen] if mode == "score" else response_ids,
        action_mask=mask or [1] * len(response_ids), sample_logprobs=[0.0] * len(response_ids), output=response,
        parsed_action="x", action="x", valid=True, format_ok=True, admissible=True, invalid_reason="", penalty=0.0,
        reward=0.0, done=False, terminated=False, truncated=False, won=False, score=0.0, anchor="a",
        admissible_count=3, action_mode=mode, seed=0, candidates=list(candidates or []), candidate_ids=cand_ids,
        candidate_index=chosen)
    if mode == "score":
        record.action_mask = [1] * len(record.response_ids)
    return record, encode_prompt(tok, plain_prompt)


class Spy:
    """Wraps a policy and records the prompts every log-prob call used."""

    def __init__(self, policy):
        self.policy = policy
        self.prompts: list[list[int]] = []

    def logprobs(self, prompt_ids, response_ids, **kw):
        self.prompts += [list(p) for p in prompt_ids]
        return self.policy.logprobs(prompt_ids, response_ids, **kw)

    def candidate_logprobs(self, prompt_ids, candidates, chosen, **kw):
        self.prompts += [list(p) for p in prompt_ids]
        return self.policy.candidate_logprobs(prompt_ids, candidates, chosen, **kw)


def test_loss_weights_tokens_and_uses_the_plain_prompt(tiny):
    tok = tiny.tokenizer
    s0, plain0 = make_step(tok, step=0, additions=[SKILL_TEXT], response="<think>ok</think><action>look</action>",
                           mask=None)
    n0 = len(s0.response_ids)
    s0.action_mask = [1] * (n0 - 2) + [0, 0]                        # the last two tokens are not action tokens
    s1, plain1 = make_step(tok, step=1, additions=[SKILL_TEXT], response="<action>go to desk 1</action>")
    s2, plain2 = make_step(tok, step=2, additions=[SKILL_TEXT], response="<action>take mug 1 from desk 1</action>")
    assert "Skill: clean first" in tok.decode(s0.prompt_ids) and "Skill:" not in tok.decode(plain0)
    plain = {id(s0): plain0, id(s1): plain1, id(s2): plain2}
    weights = [0.6, 0.3, 0.0]                                        # s2 was not kept (A <= 0)
    spy = Spy(tiny)
    loss = internalization_loss(spy, [s0, s1, s2], weights, plain_prompt_ids=lambda s: plain[id(s)])
    # every prompt the loss used is the plain one: no skill text anywhere
    assert spy.prompts == [plain0, plain1, plain2]
    assert all("Skill" not in tok.decode(p) and "clean first" not in tok.decode(p) for p in spy.prompts)
    # by hand: -(0.6 * sum of s0's action-token log-probs + 0.3 * sum of s1's) / (0.6 * (n0 - 2) + 0.3 * n1)
    with torch.no_grad():
        lp = tiny.logprobs([plain0, plain1], [s0.response_ids, s1.response_ids]).rows()
    n1 = len(s1.response_ids)
    expected = -(0.6 * lp[0][: n0 - 2].sum() + 0.3 * lp[1].sum()) / (0.6 * (n0 - 2) + 0.3 * n1)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # under the skill prompt the value differs (the prompt matters)
    with torch.no_grad():
        lp_skill = tiny.logprobs([s0.prompt_ids], [s0.response_ids]).rows()[0]
    assert not torch.allclose(lp_skill[: n0 - 2], lp[0][: n0 - 2])
    # the denominator over the whole batch, for micro-batches
    half = internalization_loss(tiny, [s0], [0.6], plain_prompt_ids=lambda s: plain[id(s)],
                                weight_total=0.6 * (n0 - 2) + 0.3 * n1)
    other = internalization_loss(tiny, [s1], [0.3], plain_prompt_ids=lambda s: plain[id(s)],
                                 weight_total=0.6 * (n0 - 2) + 0.3 * n1)
    assert (half + other).item() == pytest.approx(loss.item(), rel=1e-5)


def test_loss_gradient_reaches_only_weighted_action_tokens(tiny):
    tok = tiny.tokenizer
    s0, plain0 = make_step(tok, step=0, additions=[SKILL_TEXT], response="<action>look</action>")
    s1, plain1 = make_step(tok, step=1, additions=[SKILL_TEXT], response="<action>go to desk 1</action>")
    plain = {id(s0): plain0, id(s1): plain1}
    model = tiny.model
    model.zero_grad()
    internalization_loss(tiny, [s0, s1], [1.0, 0.0], plain_prompt_ids=lambda s: plain[id(s)]).backward()
    g_both = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]).clone()
    model.zero_grad()
    internalization_loss(tiny, [s0], [1.0], plain_prompt_ids=lambda s: plain[id(s)]).backward()
    g_one = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]).clone()
    model.zero_grad()
    assert torch.allclose(g_both, g_one, atol=1e-7)                 # the weight-0 step adds no gradient
    assert g_one.abs().sum() > 0


def test_loss_in_score_mode_uses_the_plain_prompt(tiny):
    tok = tiny.tokenizer
    cands = ["go to desk 1", "take mug 1 from desk 1", "look"]
    s0, plain0 = make_step(tok, step=0, additions=[SKILL_TEXT], response="", mode="score", candidates=cands, chosen=1)
    spy = Spy(tiny)
    loss = internalization_loss(spy, [s0], [0.7], plain_prompt_ids=lambda s: plain0, score_temperature=1.0)
    assert spy.prompts == [plain0]
    with torch.no_grad():
        expected = -tiny.candidate_logprobs([plain0], [s0.candidate_ids], [1], temperature=1.0)[0]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_no_weight_gives_zero_loss(tiny):
    tok = tiny.tokenizer
    s0, plain0 = make_step(tok, step=0, additions=[SKILL_TEXT], response="<action>look</action>")
    loss = internalization_loss(tiny, [s0], np.zeros(1), plain_prompt_ids=lambda s: plain0)
    assert loss.item() == 0.0 and loss.requires_grad


# ----------------------------------------------------------------------------------------------
# the algorithm's loss term on a hand-built batch
# ----------------------------------------------------------------------------------------------
def test_siri_loss_terms_on_a_hand_built_batch(tiny):
    """SIRI.loss_terms of two micro-batches of one optimizer step, by hand: one active skill (U 0.5),
    plain mean 0.5; episode e1 (R 1) passes the gate, e2 (R 0) does not. e1's steps with A > 0 get
    w = 0.5 * A (A 1.5 and 0.3; the step with A -0.3 gets 0); lambda at the first internalization
    step is 1.0 / 4 (W = 4); the denominator is the whole optimizer step's weighted token count."""
    from dataclasses import replace

    from algorithms.siri.algorithm import SIRI
    from algorithms.siri.config import SIRIConfig
    from algorithms.siri.validation import ValidationPair
    from siri_bench.rollout import RolloutSettings, rebuild_prompt_ids
    from siri_bench.training.state import LossBatch

    tok = tiny.tokenizer
    task, admissible = "put a clean mug in desk.", ["go to desk 1", "take mug 1 from desk 1", "look"]

    def step(episode, group, variant, k, response, additions):
        record, plain = make_step(tok, step=k, additions=additions, response=response)
        return replace(record, episode_id=episode, group_id=group, variant=variant, task=task,
                       admissible_actions=list(admissible)), plain

    s_keep, plain_keep = step("e1", "G-skill", "skill", 0, "<think>ok</think><action>look</action>", [SKILL_TEXT])
    n_keep = len(s_keep.response_ids)
    s_keep.action_mask = [1] * (n_keep - 2) + [0, 0]               # two non-action tokens: no weight
    s_keep2, plain_keep2 = step("e1", "G-skill", "skill", 1, "<action>go to desk 1</action>", [SKILL_TEXT])
    s_neg, _ = step("e1", "G-skill", "skill", 2, "<action>take mug 1 from desk 1</action>", [SKILL_TEXT])
    s_gated, _ = step("e2", "G-skill", "skill", 0, "<action>look</action>", [SKILL_TEXT])
    s_plain, _ = step("p1", "G-plain", "plain", 0, "<action>look</action>", [])
    records = [s_keep, s_keep2, s_neg, s_gated, s_plain]
    n_keep2 = len(s_keep2.response_ids)
    table = pd.DataFrame({
        "row": [0, 1, 2, 3, 4], "episode_id": ["e1", "e1", "e1", "e2", "p1"],
        "group_id": ["G-skill"] * 4 + ["G-plain"], "variant": ["skill"] * 4 + ["plain"],
        "advantage": [1.5, 0.3, -0.3, 2.0, 0.7],
        "units": [n_keep - 2, n_keep2] + [len(r.response_ids) for r in records[2:]]})

    algo = SIRI(SIRIConfig(weighting="both", gate=True, lambda_int_max=1.0, lambda_warmup_iters=4))
    skill = algo.bank.add("clean", "clean first", "cleaning tasks", ["take the mug", "clean the mug"], 1)
    skill.status, skill.utility = "active", 0.5
    algo.pairs = {"G-skill": ValidationPair(skill.skill_id, "clean", "t", "G-plain", "G-skill", 3)}
    algo.plain_means = {"G-skill": 0.5}
    algo.values = {"G-skill": {"e1": 1.0, "e2": 0.0}, "G-plain": {"p1": 0.5}}

    settings = RolloutSettings(env_id="siri_bench/ALFWorld-v0", action_mode="generate", history_length=2)
    assert rebuild_prompt_ids(s_keep, settings, tok) == plain_keep

    def batch(rows):
        return LossBatch(rows=table.iloc[rows].reset_index(drop=True), steps=[records[i] for i in rows],
                         minibatch=table, minibatch_steps=records, iteration=3, settings=settings, tokenizer=tok)

    spy = Spy(tiny)
    first = algo.loss_terms(batch([0, 1, 2]), spy)["internalization"]
    assert algo.loss_terms(batch([3, 4]), spy) == {}               # gated-out and plain rows: no term
    assert algo.first_internalization == 3
    # the prompts scored are the plain rebuilds of the two kept steps (no skill text)
    assert spy.prompts == [plain_keep, plain_keep2]
    assert not any("Skill" in tok.decode(p) for p in spy.prompts)
    with torch.no_grad():
        lp = tiny.logprobs([plain_keep, plain_keep2], [s_keep.response_ids, s_keep2.response_ids]).rows()
    w0, w1 = 0.5 * 1.5, 0.5 * 0.3                                   # clip(U, 0, 1) * A_t
    expected = 0.25 * -(w0 * lp[0][: n_keep - 2].sum() + w1 * lp[1].sum()) / (w0 * (n_keep - 2) + w1 * n_keep2)
    assert first.item() == pytest.approx(expected.item(), rel=1e-5)
    # the metric of the iteration counts the kept action tokens against the base (plain) tokens
    state = type("State", (), {"steps": table.assign(base=table["variant"] == "plain"), "iteration": 3})()
    metrics = algo._internalization_metrics(state, 3)
    assert metrics["siri/internalization_tokens"] == n_keep - 2 + n_keep2
    assert metrics["siri/internalization_token_fraction"] == pytest.approx(
        (n_keep - 2 + n_keep2) / (n_keep - 2 + n_keep2 + len(s_plain.response_ids)))
    assert metrics["siri/eligible_episodes"] == 1 and metrics["siri/gated_out_episodes"] == 1
    assert metrics["siri/lambda_int"] == 0.25

"""Advantage estimators on hand-computed step tables (the arithmetic is in the comments)."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from algorithms import estimators as E
from siri_bench.errors import RegistryError, SiriBenchError

EPS = 1e-6


def episode(group, name, rewards, anchors=None, valid=None):
    """Rows of one episode; anchors default to keys unique to the episode (singleton step groups)."""
    anchors = anchors or [f"{name}/{t}" for t in range(len(rewards))]
    valid = valid or [True] * len(rewards)
    return [dict(group_id=group, episode_id=name, step=t, reward=float(r), anchor=a, valid=v)
            for t, (r, a, v) in enumerate(zip(rewards, anchors, valid))]


def table(*episodes):
    return pd.DataFrame([row for ep in episodes for row in ep])


def per_episode(steps, advantages):
    """{episode_id: advantage}, asserting that every step of an episode got the same value."""
    out = {}
    for ep_id, values in pd.Series(advantages, index=steps.index).groupby(steps["episode_id"]):
        assert np.allclose(values, values.iloc[0], rtol=0, atol=1e-12), ep_id
        out[ep_id] = values.iloc[0]
    return out


# Three groups of different sizes; the episodes have different lengths.
#   g1: returns a=1 (2 steps), b=0 (3 steps), c=0 (1 step)
#   g2: returns d=10 (1 step: 4 + 6 over 2 steps), e=4 (1 step)
#   g3: one episode f=5 -> advantage 0
SIZES = table(
    episode("g1", "a", [0, 1]), episode("g1", "b", [0, 0, 0]), episode("g1", "c", [0]),
    episode("g2", "d", [4, 6]), episode("g2", "e", [4]),
    episode("g3", "f", [2, 3]),
)


def test_grpo_std_norm_on_groups_of_different_sizes():
    adv = per_episode(SIZES, E.compute("grpo", SIZES))
    # g1: mean 1/3; deviations 2/3, -1/3, -1/3; sum of squares 4/9+1/9+1/9 = 2/3;
    #     var = (2/3)/(3-1) = 1/3; std = 0.5773503
    std1 = math.sqrt(1 / 3)
    assert adv["a"] == pytest.approx((2 / 3) / (std1 + EPS), abs=1e-12)   # 1.1547
    assert adv["b"] == pytest.approx((-1 / 3) / (std1 + EPS), abs=1e-12)  # -0.5774
    assert adv["c"] == adv["b"]
    assert adv["a"] == pytest.approx(1.1547005, abs=1e-5)
    # g2: mean 7; deviations +-3; var = 18/1; std = 4.2426407 -> +-0.7071068
    assert adv["d"] == pytest.approx(0.7071068, abs=1e-5)
    assert adv["e"] == pytest.approx(-0.7071068, abs=1e-5)
    # g3: a group of one episode gets 0
    assert adv["f"] == 0.0


def test_grpo_mean_norm_and_rloo():
    grpo = per_episode(SIZES, E.compute("grpo", SIZES, norm="mean"))
    # g1: R - 1/3 ; g2: R - 7 ; g3: 0
    assert grpo == pytest.approx({"a": 2 / 3, "b": -1 / 3, "c": -1 / 3, "d": 3.0, "e": -3.0, "f": 0.0})
    rloo = per_episode(SIZES, E.compute("rloo", SIZES))
    # g1: a: 1 - mean(0, 0) = 1; b: 0 - mean(1, 0) = -0.5; g2: d: 10 - 4 = 6, e: 4 - 10 = -6
    assert rloo == pytest.approx({"a": 1.0, "b": -0.5, "c": -0.5, "d": 6.0, "e": -6.0, "f": 0.0})


def test_baseline_over_steps_differs_from_episodes_on_a_hand_example():
    # g: episode a returns 1 in 1 step, episode b returns 0 in 3 steps.
    steps = table(episode("g", "a", [1]), episode("g", "b", [0, 0, 0]))
    # episodes: values [1, 0]: mean 0.5, std sqrt(0.5) = 0.7071068 -> +-0.7071068
    by_episode = per_episode(steps, E.compute("grpo", steps))
    assert by_episode["a"] == pytest.approx(0.7071068, abs=1e-5)
    assert by_episode["b"] == pytest.approx(-0.7071068, abs=1e-5)
    # steps: rows [1, 0, 0, 0]: mean 0.25; deviations 0.75, -0.25 x3;
    #        sum of squares 0.5625 + 3 * 0.0625 = 0.75; var 0.75/3 = 0.25; std 0.5
    #        -> a: 0.75/0.5 = 1.5, b: -0.25/0.5 = -0.5
    by_step = per_episode(steps, E.compute("grpo", steps, baseline_over="steps"))
    assert by_step["a"] == pytest.approx(1.5, abs=1e-5)
    assert by_step["b"] == pytest.approx(-0.5, abs=1e-5)
    # RLOO over steps: n = 4 rows; a: 1 - mean(0,0,0) = 1; b rows: 0 - mean(1,0,0) = -1/3
    rloo = per_episode(steps, E.compute("rloo", steps, baseline_over="steps"))
    assert rloo == pytest.approx({"a": 1.0, "b": -1 / 3})


def test_reinforce_pp_baseline_whitens_group_centred_returns():
    adv = per_episode(SIZES, E.compute("reinforce_pp_baseline", SIZES))
    # centred per group: a 2/3, b -1/3, c -1/3, d 3, e -3, f 0 (one-episode group)
    # batch: mean 0; sum of squares 4/9 + 1/9 + 1/9 + 9 + 9 + 0 = 56/3; var (56/3)/5 = 3.7333333;
    #        std 1.9321836; d: 3 / 1.9321836 = 1.5526467
    std = math.sqrt(56 / 15)
    expected = {"a": 2 / 3, "b": -1 / 3, "c": -1 / 3, "d": 3.0, "e": -3.0, "f": 0.0}
    assert adv == pytest.approx({k: v / (std + EPS) for k, v in expected.items()}, abs=1e-12)
    assert adv["d"] == pytest.approx(1.5526467, abs=1e-5)


@pytest.mark.parametrize("name", ["grpo", "rloo", "gigpo", "reinforce_pp_baseline"])
@pytest.mark.parametrize("baseline_over", ["episodes", "steps"])
def test_all_equal_returns_give_exactly_zero(name, baseline_over):
    # Two groups in which every episode returns the same (one wins everywhere, one fails everywhere),
    # with shared anchors so GiGPO's step groups are not singletons either.
    steps = table(
        episode("g1", "a", [0, 10], ["s0", "s1"]), episode("g1", "b", [0, 0, 10], ["s0", "s2", "s1"]),
        episode("g2", "c", [0, 0], ["t0", "t1"]), episode("g2", "d", [0, 0], ["t0", "t1"]),
    )
    adv = E.compute(name, steps, baseline_over=baseline_over)
    assert not np.isnan(adv).any()
    if name == "gigpo":
        # the step group s0 still has different discounted returns: a 0.95*10 = 9.5, b 0.95^2*10 = 9.025
        assert np.count_nonzero(adv) == 2
    else:
        assert (adv == 0.0).all()


def test_float32_defect_case_is_exactly_zero():
    # verl-agent computes in float32: 8 rows of 9.9 get a spurious -0.47 each.
    naive = torch.full((8,), 9.9, dtype=torch.float32)
    naive_adv = (naive - naive.mean()) / (naive.std() + EPS)
    assert naive_adv.abs().min().item() > 0.4
    # 8 one-step episodes of 9.9 in one group
    steps = table(*[episode("g", f"e{i}", [9.9]) for i in range(8)])
    for name in ("grpo", "rloo", "gigpo", "reinforce_pp_baseline"):
        assert (E.compute(name, steps) == 0.0).all()
        assert (E.compute(name, steps, baseline_over="steps") == 0.0).all()
    # the same through the penalty: 8 wins of 10, each with one invalid step at p = 0.1 -> 9.9
    penalised = table(*[episode("g", f"e{i}", [0, 10], valid=[False, True]) for i in range(8)])
    assert (E.compute("grpo", penalised, invalid_penalty=0.1) == 0.0).all()
    # 40 rows of 5.714 (another row count verl-agent gets wrong)
    many = table(*[episode("g", f"e{i}", [5.714]) for i in range(40)])
    assert (E.compute("grpo", many, baseline_over="steps") == 0.0).all()


# GiGPO hand example (gamma = 0.5 for readable numbers), one group, two episodes:
#   e1: anchors s0 s1 s2,    rewards 0 0 1   (wins at step 2)
#   e2: anchors s0 s1 s1 s3, rewards 0 0 0 0 (loops on s1, fails)
GIGPO = table(
    episode("g", "e1", [0, 0, 1], ["s0", "s1", "s2"]),
    episode("g", "e2", [0, 0, 0, 0], ["s0", "s1", "s1", "s3"], valid=[True, False, True, True]),
)


def test_gigpo_hand_example_std_norm():
    t = E.gigpo_table(GIGPO, gamma=0.5)
    # episode level: returns [1, 0] -> +-0.7071068 (any two-episode group with different returns)
    assert t["A_episode"].to_numpy() == pytest.approx([0.7071068] * 3 + [-0.7071068] * 4, abs=1e-5)
    # discounted returns: e1: R_2 = 1, R_1 = 0 + 0.5*1 = 0.5, R_0 = 0.25; e2: all 0
    assert t["R_t"].tolist() == [0.25, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0]
    # step groups: s0 = {e1t0, e2t0}, s1 = {e1t1, e2t1, e2t2}, s2 = {e1t2}, s3 = {e2t3}
    assert t["step_group_size"].tolist() == [2, 3, 1, 2, 3, 3, 1]
    assert t["step_group"].tolist() == [0, 1, 2, 0, 1, 1, 3]
    # s0: values [0.25, 0]: mean 0.125, std 0.125*sqrt(2) = 0.1767767 -> +-0.7071068
    # s1: values [0.5, 0, 0]: mean 1/6; deviations 1/3, -1/6, -1/6; sum sq 1/9+1/36+1/36 = 1/6;
    #     var 1/12; std 0.2886751 -> 1.1547005, -0.5773503, -0.5773503
    # s2, s3: singletons -> 0
    a_step = [0.7071068, 1.1547005, 0.0, -0.7071068, -0.5773503, -0.5773503, 0.0]
    assert t["A_step"].to_numpy() == pytest.approx(a_step, abs=1e-5)
    # A = A_episode + 1.0 * A_step
    assert t["A"].to_numpy() == pytest.approx(
        [1.4142136, 1.8618073, 0.7071068, -1.4142136, -1.2844571, -1.2844571, -0.7071068], abs=1e-5)
    assert E.compute("gigpo", GIGPO, gamma=0.5) == pytest.approx(t["A"].to_numpy(), abs=0)
    # omega scales the step part only: omega = 0.5 at e1t1: 0.7071068 + 0.5*1.1547005 = 1.2844571
    half = E.compute("gigpo", GIGPO, gamma=0.5, omega=0.5)
    assert half[1] == pytest.approx(1.2844571, abs=1e-5)


def test_gigpo_default_gamma_is_095():
    # e1 rewards 0 0 10: R_2 = 10, R_1 = 9.5, R_0 = 9.025
    t = E.gigpo_table(table(episode("g", "e1", [0, 0, 10]), episode("g", "e2", [0])))
    assert t["R_t"].tolist()[:3] == pytest.approx([9.025, 9.5, 10.0], abs=1e-12)


def test_gigpo_without_repeated_anchors_equals_grpo():
    # every anchor unique -> every step group a singleton -> A_step = 0 everywhere
    t = E.gigpo_table(SIZES)
    assert (t["step_group_size"] == 1).all()
    assert (t["A_step"] == 0.0).all()
    assert E.compute("gigpo", SIZES) == pytest.approx(E.compute("grpo", SIZES), abs=0)


def test_repeated_anchor_within_one_episode_forms_a_step_group():
    # e1 revisits state a: anchors a b a c, rewards 0 0 0 1, gamma 0.5
    #   R = [0.125, 0.25, 0.5, 1]; step group a = {R_0 = 0.125, R_2 = 0.5}: mean 0.3125 -> -0.1875, +0.1875
    # e2 never sees a (anchors x y), so a is pooled only within e1.
    steps = table(episode("g", "e1", [0, 0, 0, 1], ["a", "b", "a", "c"]), episode("g", "e2", [0, 0], ["x", "y"]))
    t = E.gigpo_table(steps, gamma=0.5, norm="mean")
    assert t["step_group_size"].tolist() == [2, 1, 2, 1, 1, 1]
    assert t["A_step"].to_numpy() == pytest.approx([-0.1875, 0, 0.1875, 0, 0, 0], abs=1e-12)
    # anchors are grouped within an episode group only: the same key in another group is separate
    other = table(episode("g", "e1", [1], ["a"]), episode("h", "e2", [0], ["a"]))
    assert E.gigpo_table(other)["step_group_size"].tolist() == [1, 1]


def test_invalid_penalty_enters_the_reward():
    # GIGPO with e2's step 1 invalid, p = 0.1, gamma 0.5, norm mean:
    #   rewards e2: 0 -0.1 0 0 -> return -0.1; episode level: mean (1 - 0.1)/2 = 0.45 -> +-0.55
    #   step returns e2: R_3 = 0, R_2 = 0, R_1 = -0.1, R_0 = 0.5 * -0.1 = -0.05
    #   s0 = {0.25, -0.05}: mean 0.1 -> +0.15, -0.15
    #   s1 = {0.5, -0.1, 0}: mean 0.4/3 -> 0.3666667, -0.2333333, -0.1333333
    t = E.gigpo_table(GIGPO, gamma=0.5, norm="mean", invalid_penalty=0.1)
    assert t["reward"].tolist() == [0, 0, 1, 0, -0.1, 0, 0]
    assert t["R_t"].to_numpy() == pytest.approx([0.25, 0.5, 1, -0.05, -0.1, 0, 0], abs=1e-12)
    assert t["A_episode"].to_numpy() == pytest.approx([0.55] * 3 + [-0.55] * 4, abs=1e-12)
    assert t["A_step"].to_numpy() == pytest.approx(
        [0.15, 0.3666667, 0, -0.15, -0.2333333, -0.1333333, 0], abs=1e-6)
    # no penalty configured: the invalid flag changes nothing
    assert E.compute("gigpo", GIGPO, gamma=0.5) == pytest.approx(
        E.compute("gigpo", GIGPO.drop(columns="valid"), gamma=0.5), abs=0)


def test_invalid_penalty_verl_mode_hits_only_that_row():
    # verl-agent: returns from raw rewards, then p subtracted from that row's score and step return.
    #   row scores: e1 rows 1 1 1; e2 rows 0 -0.1 0 0; 7 rows, mean 2.9/7 = 0.4142857
    #   -> e1 rows 0.5857143, e2 rows -0.4142857, the invalid row -0.5142857
    #   step returns: e1 0.25 0.5 1; e2 0 -0.1 0 0 (the penalty is not discounted into R_0)
    #   s0 = {0.25, 0}: mean 0.125 -> +-0.125 (reward mode gives +-0.15)
    t = E.gigpo_table(GIGPO, gamma=0.5, norm="mean", invalid_penalty=0.1, penalty_mode="verl",
                      baseline_over="steps")
    assert t["R_t"].to_numpy() == pytest.approx([0.25, 0.5, 1, 0, -0.1, 0, 0], abs=1e-12)
    assert t["A_episode"].to_numpy() == pytest.approx(
        [0.5857143] * 3 + [-0.4142857, -0.5142857, -0.4142857, -0.4142857], abs=1e-6)
    assert t["A_step"].to_numpy() == pytest.approx(
        [0.125, 0.3666667, 0, -0.125, -0.2333333, -0.1333333, 0], abs=1e-6)


# ----------------------------------------------------------------------------------------------
# Property tests: row order, and the vectorised code against a loop over the definitions
# ----------------------------------------------------------------------------------------------
@st.composite
def step_tables(draw):
    rows = []
    for g in range(draw(st.integers(1, 3))):
        for e in range(draw(st.integers(1, 4))):
            n = draw(st.integers(1, 5))
            rewards = draw(st.lists(st.sampled_from([0.0, 1.0, 0.5, 9.9, 10.0]), min_size=n, max_size=n))
            anchors = draw(st.lists(st.sampled_from("abcd"), min_size=n, max_size=n))
            valid = draw(st.lists(st.booleans(), min_size=n, max_size=n))
            rows += episode(f"g{g}", f"g{g}e{e}", rewards, anchors, valid)
    return pd.DataFrame(rows)


PARAM_SETS = [
    {},
    {"norm": "mean", "gamma": 0.9, "omega": 0.5},
    {"baseline_over": "steps", "invalid_penalty": 0.1},
    {"baseline_over": "steps", "invalid_penalty": 0.1, "penalty_mode": "verl", "gamma": 1.0},
]


@settings(max_examples=40, deadline=None)
@given(steps=step_tables(), seed=st.integers(0, 2**32 - 1), params=st.sampled_from(PARAM_SETS))
def test_row_order_invariance(steps, seed, params):
    permutation = np.random.default_rng(seed).permutation(len(steps))
    shuffled = steps.iloc[permutation]
    for name in ("grpo", "rloo", "gigpo", "reinforce_pp_baseline"):
        own = {k: v for k, v in params.items() if name == "gigpo" or k not in ("gamma", "omega")}
        if name != "grpo" and name != "gigpo":
            own.pop("norm", None)
        assert E.compute(name, shuffled, **own) == pytest.approx(E.compute(name, steps, **own)[permutation],
                                                                 abs=1e-12)
    table_a = E.gigpo_table(steps, **params)
    table_b = E.gigpo_table(shuffled, **params).loc[steps.index]
    pd.testing.assert_frame_equal(table_a, table_b)


def reference_gigpo(steps, gamma=0.95, omega=1.0, norm="std", eps=EPS, baseline_over="episodes",
                    invalid_penalty=0.0, penalty_mode="reward"):
    """GiGPO written as loops straight from the module docstring's definitions."""
    rows = steps.to_dict("records")
    p = [invalid_penalty * (not r["valid"]) for r in rows]
    raw = [r["reward"] for r in rows]
    eff = [r - q for r, q in zip(raw, p)] if penalty_mode == "reward" else raw
    by_episode = defaultdict(list)
    for i, r in enumerate(rows):
        by_episode[r["episode_id"]].append(i)
    ret, step_return = {}, [0.0] * len(rows)
    for ep, idx in by_episode.items():
        idx.sort(key=lambda i: rows[i]["step"])
        ret[ep] = sum(eff[i] for i in idx)
        running = 0.0
        for i in reversed(idx):
            running = eff[i] + gamma * running
            step_return[i] = running - (p[i] if penalty_mode == "verl" else 0.0)

    def normalise(members):  # members: list of (key, value) -> {key: advantage}
        n = len(members)
        values = [v for _, v in members]
        if n < 2:
            return {k: 0.0 for k, _ in members}
        mean = sum(values) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        if std < eps:
            return {k: 0.0 for k, _ in members}
        return {k: (v - mean) / (std + eps) if norm == "std" else v - mean for k, v in members}

    episodes_of = defaultdict(set)
    for r in rows:
        episodes_of[r["group_id"]].add(r["episode_id"])
    a_episode = [0.0] * len(rows)
    for g, eps_in_g in episodes_of.items():
        if len(eps_in_g) < 2:
            continue
        if baseline_over == "episodes":
            adv = normalise([(ep, ret[ep]) for ep in sorted(eps_in_g)])
            for i, r in enumerate(rows):
                if r["group_id"] == g:
                    a_episode[i] = adv[r["episode_id"]]
        else:
            members = [(i, ret[r["episode_id"]] - (p[i] if penalty_mode == "verl" else 0.0))
                       for i, r in enumerate(rows) if r["group_id"] == g]
            for i, a in normalise(members).items():
                a_episode[i] = a
    step_groups = defaultdict(list)
    for i, r in enumerate(rows):
        step_groups[(r["group_id"], r["anchor"])].append((i, step_return[i]))
    a_step = [0.0] * len(rows)
    for members in step_groups.values():
        for i, a in normalise(members).items():
            a_step[i] = a
    return np.array([a + omega * s for a, s in zip(a_episode, a_step)]), np.array(a_episode)


@settings(max_examples=40, deadline=None)
@given(steps=step_tables(), params=st.sampled_from(PARAM_SETS))
def test_vectorised_estimators_match_loop_reference(steps, params):
    expected, expected_episode = reference_gigpo(steps, **params)
    assert E.compute("gigpo", steps, **params) == pytest.approx(expected, abs=1e-9)
    grpo_params = {k: v for k, v in params.items() if k not in ("gamma", "omega")}
    assert E.compute("grpo", steps, **grpo_params) == pytest.approx(expected_episode, abs=1e-9)


# ----------------------------------------------------------------------------------------------
# Input validation
# ----------------------------------------------------------------------------------------------
def test_registry_lists_the_estimators_and_rejects_unknown_names():
    assert {"grpo", "rloo", "gigpo", "reinforce_pp_baseline"} <= set(E.ESTIMATORS.names())
    with pytest.raises(RegistryError, match="unknown advantage estimator 'gipgo'.*gigpo"):
        E.compute("gipgo", GIGPO)


@pytest.mark.parametrize("steps, params, message", [
    (GIGPO.drop(columns="anchor"), {}, r"missing column\(s\) \['anchor'\]"),
    (GIGPO.drop(columns=["reward", "step"]), {}, r"missing column\(s\) \['step', 'reward'\]"),
    (GIGPO.assign(reward=[0, np.nan, 1, 0, 0, 0, 0]), {}, "1 NaN or infinite"),
    (GIGPO.assign(reward=[0, np.inf, 1, 0, 0, 0, 0]), {}, "1 NaN or infinite"),
    (GIGPO.assign(reward="x"), {}, "'reward' must be numeric"),
    (GIGPO.assign(step=[0, 1, 1, 0, 1, 2, 3]), {}, r"'e1' has step 1 more than once"),
    (GIGPO.assign(step=[0, 1.5, 2, 0, 1, 2, 3]), {}, "'step' must hold integers"),
    (GIGPO.assign(group_id=["g", "g", "h", "g", "g", "g", "g"]), {}, "'e1' appears in more than one group_id"),
    (GIGPO.assign(anchor=["a", None, "b", "a", "a", "a", "a"]), {}, "'anchor' has missing values"),
    (GIGPO.assign(anchor=[["a"]] * 7), {}, "'anchor' holds unhashable values"),
    (GIGPO.assign(valid=["yes"] * 7), {}, "'valid' must be boolean"),
    (GIGPO, {"gamma": 1.5}, r"gamma=1.5 is out of range; it must be >= 0.0 and <= 1.0"),
    (GIGPO, {"gamma": "0.9"}, "gamma must be a number"),
    (GIGPO, {"omega": -1.0}, "omega=-1.0 is out of range"),
    (GIGPO, {"eps": 0.0}, "eps=0.0 is out of range; it must be > 0.0"),
    (GIGPO, {"norm": "max"}, r"norm='max' is not allowed; use one of \['std', 'mean'\]"),
    (GIGPO, {"baseline_over": "tokens"}, "baseline_over='tokens' is not allowed"),
    (GIGPO, {"invalid_penalty": -0.1}, "invalid_penalty=-0.1 is out of range"),
    (GIGPO.drop(columns="valid"), {"invalid_penalty": 0.1}, "needs a boolean 'valid' column"),
    (GIGPO, {"penalty_mode": "verl", "invalid_penalty": 0.1}, "set baseline_over='steps'"),
    (GIGPO, {"lambda": 0.9}, r"unknown parameter\(s\) \['lambda'\]"),
])
def test_bad_input_raises_a_clear_error(steps, params, message):
    with pytest.raises(E.EstimatorError, match=message) as info:
        E.compute("gigpo", steps, **params)
    assert isinstance(info.value, ValueError) and isinstance(info.value, SiriBenchError)


def test_rloo_rejects_gigpo_only_parameters_and_non_frames():
    with pytest.raises(E.EstimatorError, match=r"unknown parameter\(s\) \['gamma'\]"):
        E.compute("rloo", SIZES, gamma=0.9)
    with pytest.raises(E.EstimatorError, match="must be a pandas DataFrame"):
        E.compute("grpo", SIZES.to_dict("records"))
    with pytest.raises(E.EstimatorError, match=r"gigpo_table got unknown parameter\(s\) \['omgea'\]"):
        E.gigpo_table(GIGPO, omgea=1.0)


def test_empty_table_and_index_alignment():
    assert E.compute("gigpo", GIGPO.iloc[:0]).shape == (0,)
    # a non-range index: results follow row positions, and the debug table keeps the index
    relabelled = GIGPO.set_axis([70, 60, 50, 40, 30, 20, 10])
    assert E.compute("gigpo", relabelled, gamma=0.5) == pytest.approx(E.compute("gigpo", GIGPO, gamma=0.5), abs=0)
    assert list(E.gigpo_table(relabelled).index) == [70, 60, 50, 40, 30, 20, 10]


def test_a_registered_estimator_is_usable_by_name():
    @E.register_estimator("test_constant")
    def constant(steps, value=2.0):
        """Every row gets ``value`` (test only)."""
        return np.full(len(steps), value)

    try:
        assert E.compute("test_constant", SIZES, value=3.0).tolist() == [3.0] * len(SIZES)
        with pytest.raises(E.EstimatorError, match=r"unknown parameter\(s\) \['valeu'\]"):
            E.compute("test_constant", SIZES, valeu=3.0)
        with pytest.raises(RegistryError, match="registered twice"):
            E.register_estimator("test_constant")(lambda steps: np.zeros(len(steps)))
    finally:
        E.ESTIMATORS.unregister("test_constant")

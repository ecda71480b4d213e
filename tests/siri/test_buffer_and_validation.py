"""The success buffer and the paired-validation arithmetic and planning."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from algorithms.siri.buffer import SuccessBuffer, SuccessEpisode
from algorithms.siri.validation import (
    SKILL_VARIANT,
    ema,
    episode_value,
    pair_specs,
    paired_gain,
)
from siri_bench.seeding import TaskDraw


def success(i: int, category: str = "clean") -> SuccessEpisode:
    return SuccessEpisode(f"e{i}", f"t{i}", category, f"task {i}", (f"go to desk {i}",), "obs", i, 1.0)


def test_buffer_keeps_the_newest_per_category():
    buf = SuccessBuffer(capacity=3)
    for i in range(5):
        buf.add(success(i))
    buf.add(success(9, "heat"))
    assert [e.episode_id for e in buf.by_category["clean"]] == ["e2", "e3", "e4"]
    assert buf.counts() == {"clean": 3, "heat": 1}
    assert buf.categories(min_count=2) == ["clean"]


def test_buffer_sample_is_distinct_seeded_and_all_when_few():
    buf = SuccessBuffer(capacity=10)
    for i in range(10):
        buf.add(success(i))
    a = buf.sample("clean", 4, seed=7)
    assert len({e.episode_id for e in a}) == 4
    assert a == buf.sample("clean", 4, seed=7)
    assert any(buf.sample("clean", 4, seed=s) != a for s in range(8, 20))
    assert [e.episode_id for e in a] == sorted((e.episode_id for e in a), key=lambda x: int(x[1:]))  # oldest first
    assert len(buf.sample("clean", 20, seed=1)) == 10 and buf.sample("none", 3, seed=1) == []


def test_buffer_from_record_and_state_round_trip():
    steps = [SimpleNamespace(observation="You are in a room." * 100, action="look"),
             SimpleNamespace(observation="x", action="go to desk 1")]
    record = SimpleNamespace(episode_id="e", task_id="t", task="do it", iteration=3, return_=1.0, steps=steps)
    ep = SuccessEpisode.from_record(record, "clean")
    assert ep.actions == ("look", "go to desk 1") and len(ep.first_observation) == 600
    buf = SuccessBuffer(capacity=2)
    buf.add(ep)
    restored = SuccessBuffer(capacity=2)
    restored.load_state_dict(json.loads(json.dumps(buf.state_dict())))
    assert list(restored.by_category["clean"]) == [ep]


def test_paired_gain_and_ema_by_hand():
    # skill group returns 1, 1, 0, 1 (mean 0.75); plain 0, 1, 0, 0 (mean 0.25): d = 0.5
    assert paired_gain([1, 1, 0, 1], [0, 1, 0, 0]) == pytest.approx(0.5)
    assert paired_gain([0.2, 0.4], [0.9]) == pytest.approx(-0.6)
    assert ema(0.0, 0.5, 0.3) == pytest.approx(0.15)
    assert ema(0.15, -0.2, 0.3) == pytest.approx(0.7 * 0.15 - 0.06)
    with pytest.raises(ValueError):
        paired_gain([], [1.0])


def test_episode_value_measures():
    ep = SimpleNamespace(return_=0.5, won=False, score=0.75)
    assert (episode_value(ep, "return"), episode_value(ep, "success"), episode_value(ep, "score")) == (0.5, 0.0, 0.75)
    with pytest.raises(ValueError):
        episode_value(ep, "reward")


def test_pair_specs_share_task_and_env_seed():
    draw = TaskDraw("task-7", 1234)
    pair, specs = pair_specs("skill-0003", "clean", draw, run_seed=5, iteration=12, group=4, group_size=3)
    assert (pair.plain_group, pair.skill_group) == ("train-i000012-g0004", "train-i000012-g0004-skill")
    assert (pair.skill_id, pair.category, pair.task_id, pair.iteration) == ("skill-0003", "clean", "task-7", 12)
    plain = [s for s in specs if s.group_id == pair.plain_group]
    skill = [s for s in specs if s.group_id == pair.skill_group]
    assert len(plain) == len(skill) == 3 and specs == plain + skill
    assert {s.variant for s in plain} == {"plain"} and {s.variant for s in skill} == {SKILL_VARIANT}
    assert {s.task_id for s in specs} == {"task-7"} and {s.phase for s in specs} == {"train"}
    assert {s.seeds.task_seed for s in specs} == {1234} and len({s.seeds.env_seed for s in specs}) == 1
    assert len({s.seeds.policy_seed for s in specs}) == 6 and len({s.episode_id for s in specs}) == 6
    _, other = pair_specs("skill-0003", "clean", draw, run_seed=5, iteration=12, group=5, group_size=3)
    assert other[0].seeds.env_seed != specs[0].seeds.env_seed

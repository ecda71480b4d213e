"""The run's task stream, training episode plans, the training reward and the step table."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from algorithms.grpo import GRPO, GRPOConfig
from siri_bench.config import ExperimentConfig
from siri_bench.records import EpisodeRecord
from siri_bench.rollout import group_specs, paired_specs
from siri_bench.seeding import TaskStream, sample_task_id
from siri_bench.training.rewards import STEP_TABLE_COLUMNS, step_table, training_reward
from tests.training.conftest import make_step, tiny_policy

IDS = [f"task-{k}" for k in range(10)]


def test_task_stream_is_seeded_and_resumable():
    a, b = TaskStream(7), TaskStream(7)
    first = a.draw(IDS, 5)
    assert first == b.draw(IDS, 5) and first != TaskStream(8).draw(IDS, 5)
    assert all(d.task_id == sample_task_id(IDS, d.task_seed) for d in first)   # the seed alone reproduces it
    saved = a.state_dict()
    ahead = a.draw(IDS, 4)
    c = TaskStream(7)
    c.load_state_dict(saved)
    assert c.draw(IDS, 4) == ahead and c.draws == 9
    with pytest.raises(ValueError, match="run seed"):
        TaskStream(1).load_state_dict(saved)
    counts = np.bincount([IDS.index(d.task_id) for d in TaskStream(0).draw(IDS, 5000)], minlength=10)
    assert counts.min() > 420 and counts.max() < 580                      # uniform over the split


def test_group_specs_share_task_and_env_seed_within_a_group():
    draws = TaskStream(0).draw(IDS, 3)
    specs = group_specs(draws, run_seed=0, iteration=4, group_size=2)
    assert [s.episode_id for s in specs[:2]] == ["train-i000004-g0000-m00", "train-i000004-g0000-m01"]
    for g in range(3):
        members = specs[2 * g: 2 * g + 2]
        assert {s.task_id for s in members} == {draws[g].task_id}
        assert {s.seeds.task_seed for s in members} == {draws[g].task_seed}
        assert len({s.seeds.env_seed for s in members}) == 1 and len({s.seeds.policy_seed for s in members}) == 2
    assert len({s.seeds.env_seed for s in specs}) == 3
    paired = paired_specs(specs, "skill")
    assert [s.group_id for s in paired[:2]] == ["train-i000004-g0000-skill"] * 2
    assert [s.episode_id for s in paired[:1]] == ["train-i000004-g0000-skill-m00"]
    assert [(s.task_id, s.seeds.env_seed) for s in paired] == [(s.task_id, s.seeds.env_seed) for s in specs]
    assert not {s.seeds.policy_seed for s in paired} & {s.seeds.policy_seed for s in specs}
    assert all(s.variant == "skill" for s in paired) and paired == paired_specs(specs, "skill")


def _episode(policy, name, group, valid, won):
    steps = [replace(make_step(policy, f"obs {k}", "<action>look</action>", episode=name, group=group, step=k,
                               valid=ok), terminated=won and k == len(valid) - 1, won=won and k == len(valid) - 1,
                     score=1.0 if won and k == len(valid) - 1 else 0.0)
             for k, ok in enumerate(valid)]
    return EpisodeRecord(name, group, "t", "u", "x", "task", "train", 1, 0, "plain", 0, 0, 0,
                         "success" if won else "step_limit", won, float(won), float(won), len(steps),
                         sum(not v for v in valid), 0, 0, 0, 0, 0.0, 0, 0, "generate", steps=steps)


def test_training_reward_and_grpo_with_the_policy_penalty():
    policy = tiny_policy()
    episodes = [_episode(policy, "a", "g", [True, True], True),          # return 10
                _episode(policy, "b", "g", [False, True], False),        # return 0, one invalid step: -0.1
                _episode(policy, "c", "g", [True, True], False)]         # return 0
    table = step_table(episodes, "won", 10.0)
    assert list(table.columns) == list(STEP_TABLE_COLUMNS)
    assert list(table["reward"]) == [0.0, 10.0, 0.0, 0.0, 0.0, 0.0] and list(table["row"]) == list(range(6))
    assert training_reward(episodes[0].steps[1], "score", 5.0) == 5.0
    cfg = ExperimentConfig(policy={"invalid_action_penalty": 0.1})
    adv = GRPO(GRPOConfig(), config=cfg).advantages(table)
    # hand-computed: returns 10, -0.1, 0 -> mean 3.3, sample std sqrt((6.7^2 + 3.4^2 + 3.3^2) / 2)
    std = math.sqrt((6.7 ** 2 + 3.4 ** 2 + 3.3 ** 2) / 2)
    want = [6.7 / (std + 1e-6)] * 2 + [-3.4 / (std + 1e-6)] * 2 + [-3.3 / (std + 1e-6)] * 2
    np.testing.assert_allclose(adv, want, rtol=1e-12)
    free = GRPO(GRPOConfig(), config=ExperimentConfig(policy={"invalid_action_penalty": 0.0})).advantages(table)
    assert free[2] == free[4]                                             # without the penalty b and c tie

"""The algorithm hooks as the trainer calls them, through a SIRI-like test algorithm on the corridor
env: paired skill groups, reward shaping, base-loss rows, an extra loss under re-built plain
prompts, iteration-end metrics and algorithm state in checkpoints."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch

import siri_bench.training.update as update_module
from algorithms.base import Algorithm
from algorithms.gigpo import GiGPOConfig
from algorithms.losses import weighted_nll
from siri_bench.config import build_config, expand_runs
from siri_bench.records import loss_unit_count
from siri_bench.registry import ALGORITHMS
from siri_bench.rollout import paired_specs
from siri_bench.runner import execute_run
from tests.rollout import corridor

SKILL = "SKILL: walk east, take the key on the way, then open the door."


class PairedTest(Algorithm):
    """Plain groups plus paired skill groups; PPO on plain rows, NLL of skill actions under plain prompts."""

    Config = GiGPOConfig
    trains: ClassVar[bool] = True
    rebuilt: ClassVar[list] = []

    def __init__(self, params=None, **context):
        super().__init__(params, **context)
        self.iterations_seen = 0

    def plan_rollouts(self, iteration, tasks, state):
        plain = super().plan_rollouts(iteration, tasks, state)
        return plain + paired_specs(plain, "skill")

    def prompt_additions(self, ctx):
        return [SKILL] if ctx.variant == "skill" and ctx.phase == "train" else []

    def shape_rewards(self, steps, episodes):
        steps = steps.copy()
        steps.loc[(steps["variant"] == "skill") & (steps["step"] == 0), "reward"] += 1.0
        return steps

    def base_loss_rows(self, steps):
        return (steps["variant"] == "plain").to_numpy()

    def loss_terms(self, batch, policy):
        skill = [s for s in batch.steps if s.variant == "skill"]
        if not skill:
            return {}
        prompts = [batch.plain_prompt_ids(s) for s in skill]
        PairedTest.rebuilt.extend(zip(skill, prompts))
        total = sum(loss_unit_count(s) for s in batch.minibatch_steps if s.variant == "skill")
        lp = batch.logprobs(policy, skill, prompt_ids=prompts)
        return {"internalize": weighted_nll(lp.values, lp.mask, torch.ones(len(skill)), weight_total=total)}

    def on_iteration_end(self, state):
        self.iterations_seen += 1
        return {"paired/iterations_seen": self.iterations_seen,
                "paired/skill_rows": int((state.steps["variant"] == "skill").sum()),
                "paired/skill_return": float(state.steps.loc[state.steps["variant"] == "skill", "reward"].sum())}

    def state_dict(self):
        return {"iterations_seen": self.iterations_seen}

    def load_state_dict(self, state):
        self.iterations_seen = state["iterations_seen"]


@pytest.fixture(autouse=True)
def registered():
    corridor.register()
    ALGORITHMS.load()
    ALGORITHMS.register("paired-test", PairedTest, replace=True)
    PairedTest.rebuilt = []


def config(tmp_path, **overrides):
    data = {
        "name": "hooks", "env": {"id": corridor.ENV_ID, "train_split": "train", "eval_split": "train", "max_steps": 5},
        "policy": {"model": "tiny-random", "device": "cpu", "action_mode": "score", "cpu_threads": 1},
        "algorithm": "paired-test", "iterations": 2,
        "train": {"groups_per_iter": 2, "group_size": 2, "minibatch_size": 16, "micro_batch_size": 5,
                  "lr": 1e-3, "checkpoint_every": 1},
        "eval": {"num_tasks": 2, "every": 1, "concurrency": 2},
        "output_dir": str(tmp_path),
    }
    return build_config(data, overrides)


def test_hooks_shape_what_the_trainer_trains_on(tmp_path, monkeypatch):
    calls = []
    real = update_module.policy_loss

    def spy(logprobs, *args, **kwargs):
        calls.append(logprobs.shape[0])
        return real(logprobs, *args, **kwargs)

    monkeypatch.setattr(update_module, "policy_loss", spy)
    run = execute_run(expand_runs(config(tmp_path))[0])
    assert run.is_done()
    metrics = run.read_metrics()
    for row in metrics[1:]:
        # B=2 tasks x G=2, doubled by the paired skill groups
        assert row["train/episodes"] == 8 and "train/success/skill" in row and "train/success/plain" in row
        assert row["paired/skill_rows"] > 0 and row["paired/iterations_seen"] == row["iteration"]
        assert row["loss/internalize"] > 0
    # shape_rewards ran before the advantages: each skill episode's first step got +1
    assert metrics[1]["paired/skill_return"] >= 4.0
    # the base loss saw exactly the plain rows (each row once per epoch)
    plain_rows = sum(row["train/steps"] - row["paired/skill_rows"] for row in metrics[1:])
    assert sum(calls) == plain_rows
    # the extra loss saw every skill row, under a prompt rebuilt without the skill text
    assert len(PairedTest.rebuilt) == sum(row["paired/skill_rows"] for row in metrics[1:])
    from siri_bench.models import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    for step, plain in PairedTest.rebuilt:
        assert SKILL in tok.decode(step.prompt_ids) and SKILL not in tok.decode(plain)
        assert step.prompt_additions == [SKILL]
    # evaluation is plain: no additions in any evaluation episode
    assert (run.read_episodes()["additions_chars"] == 0).all()
    # the algorithm's state is in the checkpoint
    state = torch.load(run.latest_checkpoint().path / "algorithm.pt", weights_only=False)
    assert state == {"iterations_seen": 2}


def test_paired_skill_episodes_start_like_their_plain_pair(tmp_path):
    """The rebuilt plain prompt of a skill episode's first step is token for token the plain prompt
    of its pair's first step."""
    from envs.workers import EnvPool
    from siri_bench.rollout import RolloutEngine, RolloutSettings, group_specs
    from siri_bench.seeding import TaskStream
    from siri_bench.training.state import LossBatch
    from tests.training.conftest import tiny_policy

    policy = tiny_policy(action_mode="generate")
    plain = group_specs(TaskStream(3).draw(["corridor-key1", "corridor-key2"], 2), run_seed=3, iteration=1,
                        group_size=2)
    specs = plain + paired_specs(plain, "skill")
    assert [s.seeds.env_seed for s in specs[4:]] == [s.seeds.env_seed for s in plain]
    assert len({s.seeds.policy_seed for s in specs}) == 8
    settings = RolloutSettings(env_id=corridor.ENV_ID, max_steps=3)
    algo = PairedTest()
    with EnvPool(corridor.ENV_ID, {"max_steps": 3}, 8) as pool:
        result = RolloutEngine(pool, policy, settings, algo).run(specs)
    batch = LossBatch(None, [], None, [], 1, settings, policy.tokenizer)
    by_id = {e.episode_id: e for e in result.episodes}
    for spec in specs[4:]:
        skill_first = by_id[spec.episode_id].steps[0]
        pair = spec.episode_id.replace("-skill", "")
        assert batch.plain_prompt_ids(skill_first) == by_id[pair].steps[0].prompt_ids
        assert skill_first.prompt_ids != by_id[pair].steps[0].prompt_ids
    # later steps: rebuilt with the same history and no additions
    for e in result.episodes:
        for s in e.steps:
            if e.variant == "skill":
                assert len(batch.plain_prompt_ids(s)) < len(s.prompt_ids)
            else:
                assert batch.plain_prompt_ids(s) == s.prompt_ids
    assert np.all([s.variant == e.variant for e in result.episodes for s in e.steps])

"""The same evaluation with 1 and with 2 env workers gives identical episode rows: task ids and
order come from the panel and the run seed, never from the workers."""

from __future__ import annotations

import json

import pytest
import torch

from siri_bench.config import build_config, expand_runs
from siri_bench.runner import execute_run

torch.set_num_threads(1)

ROW = ["episode_id", "task_id", "task_uid", "trial", "task_seed", "env_seed", "policy_seed", "status", "won", "score",
       "steps", "memory_scope", "split"]


def evaluate(tmp_path, env_id, panel, workers, **env):
    cfg = build_config({
        "name": f"w{workers}", "env": {"id": env_id, "workers": workers, "max_steps": 3, **env},
        "policy": {"model": "tiny-random", "device": "cpu", "max_new_tokens": 8},
        "algorithm": "react", "seeds": [3],
        "eval": {"split": panel, "num_tasks": 3, "episodes_per_task": 2, "concurrency": 4, "temperature": 1.0},
        "output_dir": str(tmp_path / "runs")})
    run_dir = execute_run(expand_runs(cfg)[0])
    assert run_dir.is_done()
    frame = run_dir.read_episodes().sort_values("episode_id").reset_index(drop=True)
    steps = run_dir.read_steps().sort_values(["episode_id", "step"])
    actions = steps.groupby("episode_id")["action"].apply(list).to_dict()
    return frame, actions, json.loads(run_dir.fingerprint_path.read_text())


@pytest.mark.parametrize("env_id,panel", [("siri_bench/WebShop-v0", "webshop/builtin_test"),
                                          ("siri_bench/ALFWorld-v0", "alfworld/builtin_eval")])
def test_one_and_two_workers_give_the_same_rows(tmp_path, env_id, panel):
    from envs.panels import get_panel

    one, one_actions, one_fp = evaluate(tmp_path, env_id, panel, 1)
    two, two_actions, two_fp = evaluate(tmp_path, env_id, panel, 2)
    assert one[ROW].to_dict("records") == two[ROW].to_dict("records")
    assert one_actions == two_actions and sum(map(len, one_actions.values())) == one["steps"].sum() > 0
    # the panel's first tasks in the panel's order, each with the seeds of its slot
    uids = list(dict.fromkeys(one["task_uid"]))  # rows sorted by episode id: eval-i000000-t0000-r0, ...
    assert uids == list(get_panel(panel).task_uids[:3])
    assert (one["split"] == panel).all()
    assert one_fp["data"] == two_fp["data"] and one_fp["data"][panel]["version"] == 1
    assert one_fp["env"]["kwargs_hash"] == two_fp["env"]["kwargs_hash"]

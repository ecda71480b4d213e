"""Healthy env workers end to end: ``siri-bench run`` with an engine that hangs in a worker process.

The env comes from a third-party package (an entry point in the ``siri_bench.envs`` group), so the
spawned worker processes can make it. The per-call timeout (``env.step_timeout_s``) kills the hung
worker, the pool restarts it, the hung episodes are marked ``env_error`` and the run finishes.
"""

from __future__ import annotations

import json

import yaml

from siri_bench.cli import main
from siri_bench.registry import ENVS
from siri_bench.store import find_run_dirs
from tests.trust.hanging_env import ENV_ID


def install_entry_point(site) -> None:
    info = site / "hanging_env_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hanging-env-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[siri_bench.envs]\nhanging = tests.trust.hanging_env:register\n")


def test_a_hung_engine_is_killed_its_episode_is_env_error_and_the_run_finishes(tmp_path, monkeypatch, capsys):
    site = tmp_path / "site"
    install_entry_point(site)
    monkeypatch.syspath_prepend(str(site))  # spawned workers inherit sys.path: they see the plugin too
    ENVS.load(reload_entry_points=True)
    assert ENV_ID in ENVS
    config = {
        "name": "hang", "output_dir": str(tmp_path / "runs"), "algorithm": "react",
        "env": {"id": ENV_ID, "eval_split": "train", "workers": 2, "step_timeout_s": 2, "max_steps": 3},
        "policy": {"model": "tiny-random", "device": "cpu", "max_new_tokens": 6},
        "eval": {"concurrency": 2, "flush_every": 1}, "report": {"plots": False},
    }
    path = tmp_path / "hang.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["-q", "run", str(path)]) == 0, capsys.readouterr().err
    (run,) = find_run_dirs(tmp_path / "runs" / "hang")
    assert run.is_done()
    rows = run.read_episodes().set_index("task_id")
    assert sorted(rows.index) == ["hang-at-reset", "hang-at-step", "ok"]
    for task, steps in (("hang-at-reset", 0), ("hang-at-step", 1)):  # the hung step is recorded
        assert rows.loc[task, "status"] == "env_error" and not rows.loc[task, "won"]
        assert "timed out after 2 s (hung engine)" in rows.loc[task, "error"]
        assert rows.loc[task, "steps"] == steps
    assert rows.loc["ok", "status"] != "env_error" and rows.loc["ok", "steps"] == 3
    done = json.loads(run.done_path.read_text())
    assert done["eval/status/env_error"] == 2 / 3

"""Every baseline's config runs end to end through ``siri-bench run`` (the CLI entry point) with the tiny model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from siri_bench.store import EPISODE_COLUMNS, RunDir

REPO = Path(__file__).resolve().parents[2]
SMALL = ["policy.model=tiny-random", "env.max_steps=2", "eval.num_tasks=1"]
OVERRIDES = {
    "react": SMALL,
    "reflexion": SMALL + ["algorithm.max_trials=2"],
    "memrl": SMALL + ["algorithm.build_tasks=2", "algorithm.build_chunk=2"],
    "skillrl": SMALL + ["iterations=1", "algorithm.build_groups=1", "algorithm.validation_tasks=1"],
    "d2skill": SMALL + ["iterations=1", "train.groups_per_iter=1"],
}
MEMORY_SCOPE = {"react": "none", "reflexion": "task", "memrl": "run", "skillrl": "run", "d2skill": "run"}


#: run as ``python -m siri_bench`` in a fresh process; the others through the same CLI entry point in this
#: process (saves a process start and the torch/transformers/TextWorld imports per config)
SUBPROCESS = {"reflexion"}


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_config_runs_through_the_cli(tmp_path, monkeypatch, name):
    args = ["run", f"configs/{name}.yaml", *OVERRIDES[name], f"output_dir={tmp_path}", "--no-report"]
    if name in SUBPROCESS:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, "-m", "siri_bench", *args], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    else:
        from siri_bench.cli import main

        monkeypatch.chdir(REPO)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        assert main(args) == 0
    (run_path,) = [p.parent for p in (tmp_path / name).glob("*/DONE")]
    run = RunDir(run_path)
    rows = run.read_episodes()
    assert list(rows.columns[:len(EPISODE_COLUMNS)]) == list(EPISODE_COLUMNS)
    assert len(rows) >= 1 and (rows["algorithm"] == name).all()
    assert (rows["memory_scope"] == MEMORY_SCOPE[name]).all()
    assert ("position" in rows.columns) == (MEMORY_SCOPE[name] != "none")
    assert (rows["tokens"] > 0).all() and (rows["seconds"] > 0).all()
    metrics = pd.DataFrame(run.read_metrics())
    assert "eval/success" in metrics.columns

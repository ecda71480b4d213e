"""Resume after a kill: `siri-bench run` killed (SIGKILL) mid-run, then started again, ends with
exactly the metrics and evaluation rows of an uninterrupted run: none lost, none duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from siri_bench.config import expand_runs, load_config
from siri_bench.runner import execute_run, run_dir_for
from tests.killing import sigkill_once_written

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "gigpo_alfworld_tiny.yaml"
OVERRIDES = ["iterations=4", "train.checkpoint_every=1", "eval.flush_every=1"]
TIMING = ("time/", "_per_s")


def comparable(rows):
    return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in rows]


def cli(output: Path) -> list[str]:
    return [sys.executable, "-m", "siri_bench", "--quiet", "run", str(TINY), f"output_dir={output}", *OVERRIDES,
            "--no-report"]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_killed_run_resumes_with_no_rows_lost_or_duplicated(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "killed"
    spec = expand_runs(load_config(TINY, [f"output_dir={out}", *OVERRIDES]))[0]
    run = run_dir_for(spec)

    proc = subprocess.Popen(cli(out), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marker = run.path / "checkpoints" / "iter_000002" / "COMPLETE"
    err = sigkill_once_written(proc, marker, timeout_s=240)
    assert marker.exists(), f"the run never wrote its second checkpoint: {err[-2000:]}"
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not run.is_done()

    again = subprocess.run(cli(out), cwd=REPO, env=env, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert run.is_done()

    reference = execute_run(expand_runs(load_config(TINY, [f"output_dir={tmp_path / 'ref'}", *OVERRIDES]))[0])
    metrics = run.read_metrics()
    assert [m["iteration"] for m in metrics] == [0, 1, 2, 3, 4]
    assert comparable(metrics) == comparable(reference.read_metrics())
    frame = run.read_episodes()
    assert frame["episode_id"].is_unique
    assert frame.groupby("iteration").size().to_dict() == {i: 2 for i in range(5)}
    keep = [c for c in frame.columns if c != "seconds"]
    mine = frame[keep].sort_values("episode_id").reset_index(drop=True)
    theirs = reference.read_episodes()[keep].sort_values("episode_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, theirs)
    assert not run.read_steps().duplicated(["episode_id", "step"]).any()

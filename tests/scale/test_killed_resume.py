"""A multi-process run killed (SIGKILL of `siri-bench run --processes 2`) leaves no trainer process
behind and resumes from its last checkpoint with no metrics or evaluation rows lost or duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from siri_bench.config import expand_runs, load_config
from siri_bench.runner import execute_run, run_dir_for
from tests.killing import sigkill_once_written
from tests.scale.test_data_parallel import assert_same_iteration

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "gigpo_alfworld_tiny.yaml"
OVERRIDES = ["iterations=3", "train.checkpoint_every=1", "eval.flush_every=1"]


def cli(output: Path) -> list[str]:
    return [sys.executable, "-m", "siri_bench", "--quiet", "run", str(TINY), f"output_dir={output}", *OVERRIDES,
            "--processes", "2", "--no-report"]


def _is_trainer(process: psutil.Process) -> bool:
    try:
        return "spawn_main" in " ".join(process.cmdline())
    except psutil.Error:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="trainer processes die with their launcher on Linux")
def test_killed_two_process_run_resumes_with_no_rows_lost_or_duplicated(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "killed"
    run = run_dir_for(expand_runs(load_config(TINY, [f"output_dir={out}", *OVERRIDES]))[0])
    proc = subprocess.Popen(cli(out), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marker = run.path / "checkpoints" / "iter_000002" / "COMPLETE"
    children: list[psutil.Process] = []

    def find_trainers() -> None:
        if len(children) < 2:
            children[:] = [c for c in psutil.Process(proc.pid).children(recursive=True) if _is_trainer(c)]

    err = sigkill_once_written(proc, marker, timeout_s=300, while_waiting=find_trainers)
    assert marker.exists(), f"the run never wrote its second checkpoint: {err[-2000:]}"
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert len(children) == 2                              # the 2 trainer processes
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"trainer processes outlived their launcher: {alive}"
    assert not run.is_done()

    again = subprocess.run(cli(out), cwd=REPO, env=env, capture_output=True, timeout=400)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert run.is_done()
    reference = execute_run(expand_runs(load_config(TINY, [f"output_dir={tmp_path / 'ref'}", *OVERRIDES]))[0])
    rows, ref_rows = run.read_metrics(), reference.read_metrics()
    assert [m["iteration"] for m in rows] == [0, 1, 2, 3]
    for mine, theirs in zip(rows[1:], ref_rows[1:]):
        assert_same_iteration(mine, theirs)
    frame = run.read_episodes()
    assert frame["episode_id"].is_unique
    assert frame.groupby("iteration").size().to_dict() == {i: 2 for i in range(4)}
    assert sorted(frame["episode_id"]) == sorted(reference.read_episodes()["episode_id"])
    assert not run.read_steps().duplicated(["episode_id", "step"]).any()

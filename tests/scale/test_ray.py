"""``siri-bench run --backend ray`` on a local Ray cluster: 2 trainer actors in a placement group and
2 env-worker actors, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'siri-bench[ray]')")

from siri_bench.cli import main  # noqa: E402
from siri_bench.store import RunDir  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "gigpo_alfworld_tiny.yaml"


@pytest.fixture()
def local_cluster():
    # logical CPUs: 1 per trainer actor and env worker (Ray does not check them against the cores)
    ray.init(num_cpus=6, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    yield
    ray.shutdown()


@pytest.mark.slow
def test_two_trainer_actors_and_two_env_workers_on_a_local_cluster(tmp_path, local_cluster):
    code = main(["run", str(TINY), f"output_dir={tmp_path}", "iterations=1", "eval.at_start=false",
                 "env.workers=2", "env.worker_backend=process", "--processes", "2", "--backend", "ray",
                 "--no-report"])
    assert code == 0
    run = RunDir(tmp_path / "gigpo_alfworld_tiny" / "gigpo-alfworld-s0")
    assert run.is_done()
    (row,) = run.read_metrics()
    assert row["iteration"] == 1 and row["train/processes"] == 2
    assert row["train/episodes"] == 4 and row["train/steps"] == 16 and row["train/grad_norm"] > 0
    assert [c.iteration for c in run.checkpoints()] == [1]
    log = run.log_path.read_text()
    assert "2 trainer actors on Ray" in log
    # the env workers were Ray actors (1 per trainer process: env.workers counts the whole run's)
    assert "env pool builtin_train: 2 env(s) on 1 ray worker(s)" in log

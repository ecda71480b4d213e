"""Two trainer processes (torch.distributed, gloo) compute what one process computes with gradient
accumulation over the same groups, and a checkpoint they write resumes in one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from siri_bench.config import expand_runs, load_config
from siri_bench.distributed.launch import SETUP_ENV, TrainerProcessError
from siri_bench.errors import ConfigError
from siri_bench.runner import execute_run
from siri_bench.store import RunDir

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "gigpo_alfworld_tiny.yaml"
#: eval only at the end (iteration 2), a checkpoint after every iteration
OVERRIDES = ["eval.at_start=false", "eval.every=100", "train.checkpoint_every=1"]
#: Values that are sums over the same tokens in a different order (float32): equal to 1e-5.
CLOSE = ("train/pg_loss", "train/kl", "train/entropy", "train/grad_norm", "train/clip_fraction",
         "train/approx_kl", "train/ratio_mean", "train/return", "train/advantage_mean")
#: Values that must be identical: what was played (the rollouts do not depend on the process count).
EXACT = ("train/episodes", "train/steps", "train/success", "train/invalid_rate", "train/completion_tokens",
         "train/prompt_tokens", "train/optimizer_steps", "train/episode_length")


def spec_in(folder: Path, *extra: str):
    return expand_runs(load_config(TINY, [f"output_dir={folder}", *OVERRIDES, *extra]))[0]


def run_dir(spec) -> RunDir:
    return RunDir(Path(spec.config.output_dir) / spec.config.name / spec.name)


def weights(run: RunDir, iteration: int) -> dict[str, torch.Tensor]:
    (ckpt,) = [c for c in run.checkpoints() if c.iteration == iteration]
    return load_file(ckpt.path / "policy" / "model.safetensors")


def assert_same_iteration(mine: dict, theirs: dict) -> None:
    for name in EXACT:
        if name in theirs:
            assert mine[name] == theirs[name], name
    checked = [n for n in CLOSE if n in theirs]
    assert "train/pg_loss" in checked and "train/grad_norm" in checked
    for name in checked:
        assert mine[name] == pytest.approx(theirs[name], abs=1e-5, rel=1e-4), name


def assert_close_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4, msg=name)


def test_two_gloo_processes_match_one_and_their_checkpoint_resumes_on_one(tmp_path, monkeypatch):
    reference = execute_run(spec_in(tmp_path / "one"))                        # 1 process, accumulation
    assert reference.is_done()
    ref_rows = {r["iteration"]: r for r in reference.read_metrics()}

    # 2 processes, stopped in iteration 2 (after checkpoint 1)
    two = spec_in(tmp_path / "two", "train.processes=2")
    monkeypatch.setenv(SETUP_ENV, "tests.scale.hooks:interrupt_update_of_iteration_2")
    with pytest.raises(TrainerProcessError, match="interrupted by the test"):
        execute_run(two)
    monkeypatch.delenv(SETUP_ENV)
    run = run_dir(two)
    rows = run.read_metrics()
    assert [r["iteration"] for r in rows] == [1]
    assert rows[0]["train/processes"] == 2 and rows[0]["time/comm_s"] >= 0
    assert_same_iteration(rows[0], ref_rows[1])
    assert [c.iteration for c in run.checkpoints()] == [1]
    meta = json.loads((run.checkpoints()[0].path / "meta.json").read_text())
    assert meta["processes"] == 2
    assert_close_weights(weights(run, 1), weights(reference, 1))
    assert "interrupted by the test" in run.log_path.read_text()

    # the same run folder resumes in 1 process and ends where the 1-process run ended
    one = spec_in(tmp_path / "two")
    assert one.name == two.name and one.config.config_hash() == two.config.config_hash()
    execute_run(one)
    assert run.is_done()
    rows = run.read_metrics()
    assert [r["iteration"] for r in rows] == [1, 2]
    assert "train/processes" not in rows[1]
    assert_same_iteration(rows[1], ref_rows[2])
    assert rows[1]["eval/success"] == ref_rows[2]["eval/success"]
    assert_close_weights(weights(run, 2), weights(reference, 2))
    mine, theirs = run.read_episodes(), reference.read_episodes()
    assert mine["episode_id"].is_unique and sorted(mine["episode_id"]) == sorted(theirs["episode_id"])
    steps = run.read_steps()
    assert not steps.duplicated(["episode_id", "step"]).any()


def test_fsdp_refuses_score_mode_before_any_process_starts(tmp_path):
    spec = spec_in(tmp_path, "train.processes=2", "train.strategy=fsdp", "policy.action_mode=score")
    with pytest.raises(ConfigError, match="score"):
        execute_run(spec)
    assert not run_dir(spec).path.exists()


@pytest.mark.slow
def test_fsdp_over_two_processes_matches_one_and_writes_a_single_process_checkpoint(tmp_path):
    reference = execute_run(spec_in(tmp_path / "one"))
    sharded = execute_run(spec_in(tmp_path / "fsdp", "train.processes=2", "train.strategy=fsdp"))
    assert sharded.is_done()
    ref_rows, rows = reference.read_metrics(), sharded.read_metrics()
    assert [r["iteration"] for r in rows] == [r["iteration"] for r in ref_rows] == [1, 2]
    for mine, theirs in zip(rows, ref_rows):
        assert_same_iteration(mine, theirs)
    for iteration in (1, 2):
        assert_close_weights(weights(sharded, iteration), weights(reference, iteration))
    # the optimizer state was gathered into the single-process format (index-keyed, full tensors)
    mine = torch.load(sharded.latest_checkpoint().path / "trainer.pt", weights_only=False)["optimizer"]
    theirs = torch.load(reference.latest_checkpoint().path / "trainer.pt", weights_only=False)["optimizer"]
    assert mine["state"].keys() == theirs["state"].keys()
    for index, state in theirs["state"].items():
        torch.testing.assert_close(mine["state"][index]["exp_avg"], state["exp_avg"], atol=1e-6, rtol=1e-4)

"""The training loop end to end on the tiny model: `siri-bench run` of the tiny config, and exact
resumption after an interruption at several points of an iteration."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from algorithms.gigpo import GiGPO
from siri_bench.cli import main
from siri_bench.config import expand_runs, load_config
from siri_bench.runner import execute_run
from siri_bench.store import RunDir

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "gigpo_alfworld_tiny.yaml"

#: Metrics that measure wall time (everything else must repeat exactly).
TIMING = ("time/", "_per_s")


def comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in rows]


def episodes(run: RunDir) -> pd.DataFrame:
    frame = run.read_episodes().drop(columns=["seconds"]).sort_values("episode_id").reset_index(drop=True)
    return frame


def test_tiny_config_trains_end_to_end(tmp_path):
    assert main(["run", str(TINY), f"output_dir={tmp_path}", "--no-report"]) == 0
    run = RunDir(tmp_path / "gigpo_alfworld_tiny" / "gigpo-alfworld-s0")
    assert run.is_done()
    metrics = run.read_metrics()
    assert [m["iteration"] for m in metrics] == [0, 1, 2]
    names = {"train/success", "train/score", "train/return", "train/episode_length", "train/invalid_rate",
             "train/kl", "train/clip_fraction", "train/entropy", "train/grad_norm", "train/tokens_per_s",
             "env/steps_per_s", "time/rollout_s", "time/advantage_s", "time/update_s", "time/eval_s",
             "time/iteration_s", "eval/success", "eval/score"}
    for row in metrics[1:]:
        assert names <= set(row), names - set(row)
        assert row["train/episodes"] == 4 and row["train/steps"] == 16          # B=2 x G=2 x 4 steps
        assert row["train/optimizer_steps"] == 2                                 # 16 rows / minibatch 8
        assert row["train/grad_norm"] > 0 and row["train/kl"] >= 0
    frame = run.read_episodes()
    assert len(frame) == 3 * 2 and frame["episode_id"].is_unique                # rounds 0, 1, 2 x 2 tasks
    assert sorted(frame["iteration"].unique()) == [0, 1, 2]
    done = json.loads(run.done_path.read_text())
    assert done["iteration"] == 2 and done["eval/episodes"] == 2
    ckpts = run.checkpoints()
    assert [c.iteration for c in ckpts] == [1, 2]
    files = {p.name for p in ckpts[-1].path.iterdir()}
    assert {"policy", "trainer.pt", "rng.pt", "algorithm.pt", "meta.json", "COMPLETE"} <= files
    assert (ckpts[-1].path / "policy" / "model.safetensors").exists()
    trainer = torch.load(ckpts[-1].path / "trainer.pt", weights_only=False)
    assert trainer["iteration"] == 2 and trainer["optimizer"]["state"]
    rng = torch.load(ckpts[-1].path / "rng.pt", weights_only=False)
    assert rng["task_stream"]["draws"] == 4                                    # 2 iterations x B = 2


# ----------------------------------------------------------------------------------------------
# Exact resumption (in-process interruptions; the subprocess kill is tests/core/test_resume.py)
# ----------------------------------------------------------------------------------------------
OVERRIDES = ["iterations=3", "train.checkpoint_every=2", "eval.flush_every=1"]


def spec_in(folder: Path):
    cfg = load_config(TINY, [f"output_dir={folder}", *OVERRIDES])
    return expand_runs(cfg)[0]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return execute_run(spec_in(tmp_path_factory.mktemp("reference")))


class Interrupt(KeyboardInterrupt):
    """Stands for a kill (KeyboardInterrupt passes every `except Exception`)."""


def _interrupt_update_of_iteration_1(monkeypatch):
    import siri_bench.training.update as update

    real = update.update_policy

    def fake(*args, **kwargs):
        if kwargs["iteration"] == 1:
            raise Interrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(update, "update_policy", fake)


def _interrupt_evaluation_of_iteration_3(monkeypatch):
    seen = []

    def on_episode_end(self, episode, phase):
        if phase == "eval" and episode.iteration == 3:
            seen.append(episode.episode_id)
            if len(seen) == 2:                      # one episode of the round is already written
                raise Interrupt

    monkeypatch.setattr(GiGPO, "on_episode_end", on_episode_end)


def _interrupt_checkpoint_of_iteration_3(monkeypatch):
    import siri_bench.training.checkpoint as checkpoint

    real = checkpoint.save_checkpoint

    def fake(run_dir, iteration, **kwargs):
        if iteration == 3:
            raise Interrupt                           # its metrics row is already written
        return real(run_dir, iteration, **kwargs)

    monkeypatch.setattr(checkpoint, "save_checkpoint", fake)


@pytest.mark.parametrize("interrupt, written_before", [
    (_interrupt_update_of_iteration_1, {"rows": [0], "checkpoint": None}),
    (_interrupt_evaluation_of_iteration_3, {"rows": [0, 1, 2], "checkpoint": 2}),
    (_interrupt_checkpoint_of_iteration_3, {"rows": [0, 1, 2, 3], "checkpoint": 2}),
], ids=["update-1", "eval-3", "checkpoint-3"])
def test_interrupted_run_resumes_exactly(tmp_path, uninterrupted, interrupt, written_before):
    spec = spec_in(tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        interrupt(patch)
        with pytest.raises(Interrupt):
            execute_run(spec)
    run = RunDir(Path(spec.config.output_dir) / spec.config.name / spec.name)
    assert not run.is_done()
    assert [m["iteration"] for m in run.read_metrics()] == written_before["rows"]
    latest = run.latest_checkpoint()
    assert (latest.iteration if latest else None) == written_before["checkpoint"]

    execute_run(spec)
    assert run.is_done()
    assert comparable(run.read_metrics()) == comparable(uninterrupted.read_metrics())
    pd.testing.assert_frame_equal(episodes(run), episodes(uninterrupted))
    steps = run.read_steps()
    assert not steps.duplicated(["episode_id", "step"]).any()
    mine = run.latest_checkpoint().path / "policy" / "model.safetensors"
    theirs = uninterrupted.latest_checkpoint().path / "policy" / "model.safetensors"
    assert mine.read_bytes() == theirs.read_bytes()

"""The evaluation runner and the run shell: episodes in the run folder, resume, siri-bench eval."""

from __future__ import annotations

import json
from typing import ClassVar

import pandas as pd
import pytest
import yaml

from algorithms.base import Algorithm
from siri_bench.config import build_config, expand_runs
from siri_bench.errors import RunStateError, SiriBenchError
from siri_bench.evaluate import evaluate_run_dir, run_evaluation
from siri_bench.registry import ALGORITHMS
from siri_bench.runner import execute_run, run_dir_for
from siri_bench.store import EPISODE_COLUMNS, EPISODE_STATUSES, RunDir
from siri_bench.trainer import POLICY_CHECKPOINT_DIR, build_run_context
from tests.rollout.corridor import ENV_ID


def config(tmp_path, **eval_overrides):
    data = {
        "name": "evaltest",
        "env": {"id": ENV_ID, "eval_split": "train", "max_steps": 4},
        "policy": {"model": "tiny-random", "device": "cpu", "action_mode": "score"},
        "algorithm": "react",
        "eval": {"num_tasks": 2, "episodes_per_task": 2, "concurrency": 2, "flush_every": 1, **eval_overrides},
        "output_dir": str(tmp_path / "runs"),
    }
    return build_config(data)


def test_react_run_writes_episodes_and_finishes(tmp_path):
    spec = expand_runs(config(tmp_path))[0]
    run_dir = execute_run(spec)
    assert run_dir.is_done()
    frame = run_dir.read_episodes()
    assert list(frame.columns[:len(EPISODE_COLUMNS)]) == list(EPISODE_COLUMNS)
    assert len(frame) == 4 and frame["episode_id"].is_unique
    # the first num_tasks tasks of the split, in canonical order, each played episodes_per_task times
    assert list(frame.sort_values("episode_id")["task_id"]) == ["corridor-key0"] * 2 + ["corridor-key1"] * 2
    assert sorted(frame["trial"]) == [0, 0, 1, 1]
    assert set(frame["status"]) <= set(EPISODE_STATUSES)
    assert (frame["algorithm"] == "react").all() and (frame["split"] == "train").all() and (frame["seed"] == 0).all()
    assert (frame["additions_chars"] == 0).all(), "react must add nothing to the prompt"
    assert (frame["iteration"] == 0).all()
    steps = run_dir.read_steps()
    assert len(steps) == frame["steps"].sum() and "prompt_ids" not in steps.columns
    assert all(len(a) == 0 for a in steps["prompt_additions"])
    templates = json.loads((run_dir.path / "templates.json").read_text())
    assert list(templates["hashes"]) == ["generic.score/v1"]
    fingerprint = json.loads(run_dir.fingerprint_path.read_text())
    assert list(fingerprint["templates"]) == ["generic.score/v1"] and fingerprint["model"]["name"] == "tiny-random"
    assert fingerprint["config"] == spec.config.config_hash() and fingerprint["env"]["id"] == ENV_ID
    assert fingerprint["data"] == {"train": {"corridor": "length=4"}}
    metrics = run_dir.read_metrics()
    assert metrics[0]["iteration"] == 0 and metrics[0]["eval/episodes"] == 4
    done = json.loads(run_dir.done_path.read_text())
    assert done["policy"]["backend"] == "hf" and "eval/success" in done
    parts = run_dir.episode_parts()
    assert parts == [f"iter_000000.p{k:04d}" for k in range(4)]


class _Interrupting(Algorithm):
    """Evaluation-only; raises KeyboardInterrupt when its third episode ends (a killed run)."""

    trains: ClassVar[bool] = False
    seen: ClassVar[list[str]] = []

    def on_episode_end(self, episode, phase):
        _Interrupting.seen.append(episode.episode_id)
        if len(_Interrupting.seen) == 3:
            raise KeyboardInterrupt


class _Counting(Algorithm):
    """Evaluation-only; records the episodes it saw."""

    trains: ClassVar[bool] = False
    seen: ClassVar[list[str]] = []

    def on_episode_end(self, episode, phase):
        _Counting.seen.append(episode.episode_id)


class _Trainer(Algorithm):
    """Claims to train (a run without a train split must stop with a clear error)."""

    trains: ClassVar[bool] = True


@pytest.fixture(autouse=True)
def register_test_algorithms():
    ALGORITHMS.load()
    names = {"interrupting-test": _Interrupting, "counting-test": _Counting, "trainer-test": _Trainer}
    for name, cls in names.items():
        ALGORITHMS.register(name, cls, replace=True)
    yield
    for name in names:  # test-only algorithms must not leak into other tests (e.g. `siri-bench algos`)
        ALGORITHMS.unregister(name)


def test_an_interrupted_evaluation_resumes_without_redoing_episodes(tmp_path):
    cfg = config(tmp_path, num_tasks=3)
    spec = expand_runs(cfg)[0]
    run_dir = run_dir_for(spec)
    ctx = build_run_context(spec, run_dir)
    ctx.algorithm = _Interrupting(None)
    _Interrupting.seen = []
    with pytest.raises(KeyboardInterrupt):
        run_evaluation(ctx, 0)
    ctx.close()
    written = run_dir.read_episodes()
    assert len(written) == 2 and set(written["episode_id"]) == set(_Interrupting.seen[:2])
    before = {p: (run_dir.episode_parts_dir / f"{p}.parquet").stat().st_mtime_ns for p in run_dir.episode_parts()}
    ctx = build_run_context(spec, run_dir)
    ctx.algorithm = _Counting(None)
    _Counting.seen = []
    frame = run_evaluation(ctx, 0)
    ctx.close()
    assert len(frame) == 6 and frame["episode_id"].is_unique
    assert set(_Counting.seen).isdisjoint(_Interrupting.seen[:2]) and len(_Counting.seen) == 4
    after = {p: (run_dir.episode_parts_dir / f"{p}.parquet").stat().st_mtime_ns for p in before}
    assert after == before, "finished parts must not be rewritten"
    # a third call finds everything done and plays nothing
    ctx = build_run_context(spec, run_dir)
    ctx.algorithm = _Counting(None)
    _Counting.seen = []
    assert len(run_evaluation(ctx, 0)) == 6 and _Counting.seen == []
    ctx.close()


def test_training_without_a_train_split_stops_with_a_clear_error(tmp_path):
    cfg = config(tmp_path)
    cfg.algorithm = {"name": "trainer-test"}
    cfg.env.train_split = None
    spec = expand_runs(cfg)[0]
    with pytest.raises(SiriBenchError, match="env.train_split is not set"):
        execute_run(spec)


def test_evaluate_run_dir_base_model_and_checkpoint(tmp_path):
    spec = expand_runs(config(tmp_path))[0]
    run_dir = execute_run(spec)
    out = evaluate_run_dir(run_dir.path, overrides=["eval.num_tasks=1", "eval.episodes_per_task=1"])
    assert out == run_dir.path / "evals" / "train-base"
    evaluated = RunDir(out)
    assert evaluated.is_done() and len(evaluated.read_episodes()) == 1
    assert yaml.safe_load(evaluated.config_path.read_text())["eval"]["num_tasks"] == 1
    # a checkpoint of (different) weights is loaded and evaluated under its iteration number
    from siri_bench.config import PolicyConfig
    from siri_bench.policy import build_policy

    other = build_policy(PolicyConfig(model="tiny-random", device="cpu"), model_seed=7)
    run_dir.save_checkpoint(3, lambda folder: other.save_pretrained(folder / POLICY_CHECKPOINT_DIR))
    out3 = evaluate_run_dir(run_dir.path, overrides=["eval.num_tasks=1", "eval.episodes_per_task=1"],
                            checkpoint="3", out=tmp_path / "ck3")
    frame = RunDir(out3).read_episodes()
    assert list(frame["iteration"]) == [3]
    with pytest.raises(RunStateError, match="no checkpoint of iteration 9"):
        evaluate_run_dir(run_dir.path, checkpoint="9")
    with pytest.raises(RunStateError, match="not a run folder"):
        evaluate_run_dir(tmp_path / "nowhere")


def test_eval_episode_rows_concatenate_across_parts(tmp_path):
    spec = expand_runs(config(tmp_path, flush_every=3))[0]
    run_dir = execute_run(spec)
    assert run_dir.episode_parts() == ["iter_000000.p0000", "iter_000000.p0001"]
    parts = [pd.read_parquet(run_dir.episode_parts_dir / f"{p}.parquet") for p in run_dir.episode_parts()]
    assert [len(p) for p in parts] == [3, 1]
    assert len(pd.read_parquet(run_dir.episodes_path)) == 4

"""Evaluation: the rollout engine in eval mode on a fixed split, one row per episode in the run folder.

The evaluated tasks are the first ``eval.num_tasks`` of ``env.unwrapped.task_ids`` of the eval split
(the env's canonical order) or, when ``eval.split`` names a task panel (``alfworld/valid_unseen``,
see :mod:`envs.panels`), the panel's tasks in the panel's order after checking that the env's split
holds exactly them; each task is played ``eval.episodes_per_task`` times, with ``eval.*`` decoding
(``eval.temperature``: 0 is greedy; score mode samples candidates at ``eval.score_temperature``, 0:
argmax). Seeds come from :func:`siri_bench.seeding.eval_episode_seeds`, so every round and every
algorithm with the same run seed plays the same tasks from the same starts.

Finished episodes are written every ``eval.flush_every`` episodes as parts named
``iter_NNNNNN.pKKKK`` (episodes, plus step transcripts unless ``eval.keep_transcripts: none``). A
round that was interrupted resumes where it stopped: episodes already in a part of the round are
not played again.

:func:`evaluate_run_dir` (``siri-bench eval RUN_DIR``) re-evaluates a finished or running run's
checkpoint (or its base model, for evaluation-only algorithms) into a separate folder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from siri_bench.errors import ConfigError, RunStateError
from siri_bench.logs import progress
from siri_bench.records import EpisodeRecord, episodes_frame, transcript_frame
from siri_bench.rollout import EpisodeSpec, RolloutEngine, RolloutSettings
from siri_bench.seeding import eval_episode_seeds
from siri_bench.store import EPISODE_STATUSES, RunDir

log = logging.getLogger(__name__)


def part_prefix(iteration: int) -> str:
    return f"iter_{iteration:06d}"


def eval_specs(task_ids: Sequence[str], *, run_seed: int, iteration: int, episodes_per_task: int = 1,
               phase: str = "eval") -> list[EpisodeSpec]:
    """The episodes of one evaluation round, in task order (trials of a task next to each other)."""
    specs = []
    for t, task_id in enumerate(task_ids):
        for trial in range(episodes_per_task):
            specs.append(EpisodeSpec(
                episode_id=f"{phase}-i{iteration:06d}-t{t:04d}-r{trial}", group_id=f"{phase}-t{t:04d}",
                task_id=task_id, seeds=eval_episode_seeds(run_seed, iteration, t, trial), phase=phase,
                iteration=iteration, trial=trial))
    return specs


def done_episode_ids(run_dir: RunDir, iteration: int) -> set[str]:
    """Episode ids already written for a round (any part of it)."""
    prefix = part_prefix(iteration)
    ids: set[str] = set()
    for part in run_dir.episode_parts():
        if part == prefix or part.startswith(prefix + "."):
            frame = pd.read_parquet(run_dir.episode_parts_dir / f"{part}.parquet", columns=["episode_id"])
            ids.update(frame["episode_id"].astype(str))
    return ids


def _next_part_index(run_dir: RunDir, iteration: int) -> int:
    prefix = part_prefix(iteration) + ".p"
    found = [int(p[len(prefix):]) for p in run_dir.episode_parts() if p.startswith(prefix) and p[len(prefix):].isdigit()]
    return max(found, default=-1) + 1


def round_episodes(run_dir: RunDir, iteration: int) -> pd.DataFrame:
    """Every written episode row of one round."""
    frame = run_dir.read_episodes()
    if frame.empty:
        return frame
    return frame[frame["iteration"] == iteration].reset_index(drop=True)


def summarize(frame: pd.DataFrame) -> dict[str, Any]:
    """Headline figures of a set of episode rows under stable metric names."""
    if frame.empty:
        return {"eval/episodes": 0}
    out: dict[str, Any] = {
        "eval/episodes": int(len(frame)),
        "eval/success": float(frame["won"].mean()),
        "eval/score": float(frame["score"].mean()),
        "eval/return": float(frame["return"].mean()),
        "eval/steps": float(frame["steps"].mean()),
        "eval/invalid_rate": float(frame["invalid_steps"].sum() / max(1, frame["steps"].sum())),
        "eval/tokens": int(frame["tokens"].sum()),
    }
    for status in EPISODE_STATUSES:
        out[f"eval/status/{status}"] = float((frame["status"] == status).mean())
    return out


def env_split_of(ctx: Any, split: str) -> str:
    """The env split to make envs on for an eval split or task panel name."""
    from envs.panels import resolve_split

    return resolve_split(ctx.config.env.id, split)[0]


def eval_task_ids(ctx: Any, split: str) -> list[str]:
    """The evaluated tasks of ``split``: the first ``eval.num_tasks`` in the env's canonical order, or
    of a task panel in the panel's order. A panel is checked against the env's split
    (:meth:`envs.panels.Panel.select`: DataError when the data differ) and recorded in the run's
    fingerprint."""
    from envs.panels import resolve_split

    cfg = ctx.config
    env_split, panel = resolve_split(cfg.env.id, split)
    probe_pool = ctx.env_pool(env_split, 1)
    task_ids = list(probe_pool.call("task_ids", [0])[0])
    if panel is not None:
        if cfg.env.task_types:
            raise ConfigError(f"eval.split names the task panel {panel.ref}, which fixes the task list; "
                              "env.task_types cannot filter it (use the split name to filter tasks)")
        uids = list(probe_pool.call("task_uids", [0])[0])
        task_ids = panel.select(task_ids, uids, cfg.env.id)
        if ctx.data.get(panel.name) != panel.fingerprint():
            ctx.data[panel.name] = panel.fingerprint()
            ctx.write_fingerprint()
    task_ids = task_ids[: cfg.eval.num_tasks] if cfg.eval.num_tasks else task_ids
    if not task_ids:
        raise RunStateError(f"the eval split {split!r} of {cfg.env.id} has no tasks")
    return task_ids


def resume_positions(ctx: Any, iteration: int) -> None:
    """After an interrupted round, let episode positions continue after the rows already written."""
    algorithm = ctx.algorithm
    if algorithm is None or not hasattr(algorithm, "episodes_seen"):
        return
    frame = round_episodes(ctx.run_dir, iteration)
    if not frame.empty and "position" in frame.columns and frame["position"].notna().any():
        algorithm.episodes_seen = max(int(algorithm.episodes_seen), int(frame["position"].max()) + 1)


def play_and_write(ctx: Any, specs: Sequence[EpisodeSpec], iteration: int, split: str, *,
                   before_write: Callable[[list[EpisodeRecord]], None] | None = None,
                   label: str = "eval") -> int:
    """Play the ``specs`` not yet written for round ``iteration`` and write their rows in parts.

    ``before_write(records)`` sees each batch of finished episodes just before it is written (at most
    ``eval.flush_every`` of them); it may add columns through ``record.extra`` (Reflexion writes its
    reflections there, so that an interrupted round resumes with them). Returns the number played.
    """
    cfg = ctx.config
    run_dir: RunDir = ctx.run_dir
    finished = done_episode_ids(run_dir, iteration)
    todo = [s for s in specs if s.episode_id not in finished]
    if len(todo) < len(specs):
        log.info("%s round %d: %d of %d episodes already written, %d to go", label, iteration,
                 len(specs) - len(todo), len(specs), len(todo))
        resume_positions(ctx, iteration)
    if not todo:
        return 0
    pool = ctx.env_pool(env_split_of(ctx, split), min(cfg.eval.concurrency, len(todo)))
    engine = RolloutEngine(pool, ctx.policy, RolloutSettings.from_config(cfg, "eval"), ctx.algorithm)
    meta = {**ctx.meta(), "split": split}
    buffer: list[EpisodeRecord] = []
    part = [_next_part_index(run_dir, iteration)]
    keep_steps = cfg.eval.keep_transcripts != "none"

    def flush() -> None:
        if not buffer:
            return
        if before_write is not None:
            before_write(list(buffer))
        steps = transcript_frame([s for e in buffer for s in e.steps]) if keep_steps else None
        run_dir.write_episode_part(f"{part_prefix(iteration)}.p{part[0]:04d}", episodes_frame(buffer, meta), steps)
        part[0] += 1
        buffer.clear()

    wins = [0]
    t0 = time.monotonic()
    with progress(len(todo), f"{label} {cfg.env.id.split('/')[-1]} {split} iter {iteration}") as bar:
        def on_end(record: EpisodeRecord) -> None:
            buffer.append(record)
            wins[0] += int(record.won)
            bar.advance(1, note=f"success {wins[0]}/{bar.done + 1}")
            if len(buffer) >= cfg.eval.flush_every:
                flush()

        try:
            engine.run(todo, on_episode_end=on_end)
        finally:
            flush()
            ctx.write_fingerprint()  # what the back end learnt while playing (e.g. openai seed_honoured)
    log.info("%s round %d: %d episodes in %.0fs", label, iteration, len(todo), time.monotonic() - t0)
    return len(todo)


def run_evaluation(ctx: Any, iteration: int = 0, *, split: str | None = None) -> pd.DataFrame:
    """Evaluate the run context's policy on its eval split; returns the round's episode rows.

    ``ctx`` is a :class:`siri_bench.trainer.RunContext`.
    """
    cfg = ctx.config
    split = split or cfg.eval_split
    specs = eval_specs(eval_task_ids(ctx, split), run_seed=ctx.seed, iteration=iteration,
                       episodes_per_task=cfg.eval.episodes_per_task)
    play_and_write(ctx, specs, iteration, split)
    return round_episodes(ctx.run_dir, iteration)


# ----------------------------------------------------------------------------------------------
# siri-bench eval RUN_DIR
# ----------------------------------------------------------------------------------------------
def evaluate_run_dir(run_dir: str | Path, overrides: Sequence[str] = (), checkpoint: str = "latest",
                     out: str | Path | None = None) -> Path:
    """Evaluate a run's checkpoint (``latest`` or an iteration number) on its (overridden) eval split.

    Writes a run folder of its own (default ``RUN_DIR/evals/<split>-<checkpoint>``) and returns it.
    Evaluation-only algorithms have no checkpoint: their base model is evaluated.
    """
    from siri_bench.config import RunSpec, build_config
    from siri_bench.logs import run_log_file
    from siri_bench.registry import ALGORITHMS
    from siri_bench.trainer import POLICY_CHECKPOINT_DIR, build_run_context

    src = RunDir(run_dir)
    if not src.exists():
        raise RunStateError(f"{run_dir} is not a run folder (no config.yaml)")
    cfg = build_config(src.read_config(), overrides, source=str(src.config_path))
    ckpt = None
    if checkpoint == "latest":
        ckpt = src.latest_checkpoint()
    else:
        try:
            wanted = int(checkpoint)
        except ValueError:
            raise RunStateError(f"--checkpoint {checkpoint!r}: give 'latest' or an iteration number") from None
        matches = [c for c in src.checkpoints() if c.iteration == wanted]
        if not matches:
            have = ", ".join(str(c.iteration) for c in src.checkpoints()) or "none"
            raise RunStateError(f"{run_dir} has no checkpoint of iteration {wanted} (have: {have})")
        ckpt = matches[0]
    trains = bool(getattr(ALGORITHMS.get(cfg.algorithm_name), "trains", False))
    if ckpt is None and trains:
        raise RunStateError(f"{run_dir} has no complete checkpoint yet; train it first (siri-bench run)")
    label = f"iter{ckpt.iteration:06d}" if ckpt is not None else "base"
    dest = RunDir(Path(out) if out else src.path / "evals" / f"{cfg.eval_split.replace('/', '_')}-{label}")
    if dest.is_done():
        log.info("%s is already evaluated", dest.path)
        return dest.path
    dest.write_config(cfg.to_dict())
    spec = RunSpec(name=f"{src.path.name}-eval-{label}", seed=cfg.seeds[0], cell="", config=cfg)
    with run_log_file(dest.log_path):
        ctx = build_run_context(spec, dest)
        try:
            if ckpt is not None:
                ctx.load_policy_checkpoint(ckpt.path / POLICY_CHECKPOINT_DIR)
            # the algorithm state too (skill banks, memories): what it adds to evaluation prompts (if
            # anything) must be what it would add at the end of training
            ctx.algorithm.load_evaluation_state(src, ckpt.path if ckpt is not None else None)
            iteration = ckpt.iteration if ckpt is not None else 0
            frame = ctx.algorithm.evaluate(ctx, iteration)
            summary = summarize(frame)
            dest.append_metrics({"iteration": iteration, **summary})
            dest.finalize({"source": str(src.path), "checkpoint": label, **summary, "policy": ctx.policy_info()})
        finally:
            ctx.close()
    return dest.path

"""The results store: one folder per run, written atomically, readable while runs are running.

Layout of a run folder::

    RUN/
      config.yaml          resolved experiment config of this run
      fingerprint.json     package versions, data/template/model/config hashes
      metrics.jsonl        one JSON object per training iteration (stable metric names)
      episodes/            evaluation episodes, one parquet part per evaluation round
      episodes.parquet     all evaluation episodes, written when the run finishes
      steps/               step transcripts, one parquet part per evaluation round
      skills.jsonl         skill-bank events (algorithms with a skill bank)
      checkpoints/iter_000010/  model, optimizer, RNG and algorithm state
      log.txt              the run's log
      DONE                 written last: the run finished

Every file is written to a temporary name in the same folder and renamed into place, so a
reader never sees half a file and a killed run never leaves a corrupt one. Evaluation rows are
keyed by their round (``part`` name): re-running a round after a resume *replaces* its part, so
rows are never duplicated, and rounds finished before a kill are never lost.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from siri_bench.errors import RunStateError

log = logging.getLogger(__name__)

#: Columns every evaluation episode row has (algorithms may add more: every algorithm adds
#: ``memory_scope``, those that carry state across episodes also ``position``, the episode's
#: 0-based place in the run's order; see ``Algorithm.annotate_episode``).
EPISODE_COLUMNS = (
    "run", "algorithm", "env", "split", "seed", "iteration", "episode_id", "task_id", "task_type",
    "task_seed", "env_seed", "policy_seed", "trial", "status", "won", "score", "return", "steps",
    "invalid_steps", "prompt_tokens", "completion_tokens", "tokens", "seconds",
)

#: Columns of step transcripts (``steps/*.parquet``, ``steps.parquet``), one row per step.
STEP_COLUMNS = (
    "episode_id", "step", "observation", "prompt_template", "prompt_additions", "output", "action",
    "valid", "reward", "admissible_count", "prompt_tokens", "completion_tokens", "seconds",
)

#: Episode statuses (the failure taxonomy): exactly one per episode. "failure" means the
#: environment ended the episode without a win (e.g. a WebShop purchase scoring below 1).
EPISODE_STATUSES = (
    "success", "failure", "step_limit", "invalid_format", "invalid_action", "context_overflow",
    "env_error", "policy_error",
)


# ----------------------------------------------------------------------------------------------
# Atomic writes
# ----------------------------------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_with(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` then rename ``tmp_path`` onto ``path`` (same folder, atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        writer(tmp_path)
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write_with(path, lambda p: p.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_write_parquet(path: str | Path, frame: pd.DataFrame) -> Path:
    return atomic_write_with(path, lambda p: frame.to_parquet(p, index=False, compression="zstd"))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def to_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True, default=_json_default) + "\n" for r in rows)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read JSON lines, ignoring a torn last line (a writer killed mid-append)."""
    p = Path(path)
    if not p.exists():
        return []
    rows = []
    lines = p.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                log.warning("%s: ignoring a torn last line", p)
                continue
            raise RunStateError(f"{p}: line {i + 1} is not valid JSON") from None
    return rows


# ----------------------------------------------------------------------------------------------
# A run folder
# ----------------------------------------------------------------------------------------------
_ITER_DIR = re.compile(r"^iter_(\d{6,})$")


@dataclass
class Checkpoint:
    iteration: int
    path: Path


class RunDir:
    """Reads and writes one run folder (see the module docstring for the layout)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # paths ---------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def episodes_path(self) -> Path:
        return self.path / "episodes.parquet"

    @property
    def episode_parts_dir(self) -> Path:
        return self.path / "episodes"

    @property
    def steps_parts_dir(self) -> Path:
        return self.path / "steps"

    @property
    def steps_path(self) -> Path:
        return self.path / "steps.parquet"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def done_path(self) -> Path:
        return self.path / "DONE"

    @property
    def log_path(self) -> Path:
        return self.path / "log.txt"

    @property
    def fingerprint_path(self) -> Path:
        return self.path / "fingerprint.json"

    @property
    def skills_path(self) -> Path:
        return self.path / "skills.jsonl"

    # state ----------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.config_path.exists()

    def is_done(self) -> bool:
        return self.done_path.exists()

    def status(self) -> str:
        if self.is_done():
            return "done"
        if self.exists():
            return "running" if self._recently_written() else "incomplete"
        return "missing"

    def _recently_written(self, seconds: float = 120.0) -> bool:
        newest = max((p.stat().st_mtime for p in self.path.rglob("*") if p.is_file()), default=0.0)
        return time.time() - newest < seconds

    # config ---------------------------------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_path, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))

    def read_config(self) -> dict[str, Any]:
        if not self.config_path.exists():
            raise RunStateError(f"{self.path} is not a run folder (no config.yaml)")
        return yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}

    # metrics --------------------------------------------------------------------------------
    def read_metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_path)

    def append_metrics(self, row: dict[str, Any]) -> None:
        """Add one iteration's metrics; a row for the same iteration replaces the old one."""
        rows = [r for r in self.read_metrics() if r.get("iteration") != row.get("iteration")]
        rows.append(row)
        rows.sort(key=lambda r: (r.get("iteration", -1)))
        atomic_write_text(self.metrics_path, to_jsonl(rows))

    # episodes -------------------------------------------------------------------------------
    def write_episode_part(self, part: str, frame: pd.DataFrame, steps: pd.DataFrame | None = None) -> None:
        """Write one evaluation round's rows (replacing an earlier write of the same round).

        ``steps`` (per-step transcripts) is written first, so a round whose episodes are visible
        always has its transcripts.
        """
        _check_part_name(part)
        if steps is not None:
            atomic_write_parquet(self.steps_parts_dir / f"{part}.parquet", steps)
        atomic_write_parquet(self.episode_parts_dir / f"{part}.parquet", frame)

    def episode_parts(self) -> list[str]:
        if not self.episode_parts_dir.exists():
            return []
        return sorted(p.stem for p in self.episode_parts_dir.glob("*.parquet") if not p.name.startswith("."))

    def read_episodes(self) -> pd.DataFrame:
        """All evaluation rows: episodes.parquet when finished, else the parts written so far."""
        if self.is_done() and self.episodes_path.exists():
            return pd.read_parquet(self.episodes_path)
        return _concat([pd.read_parquet(self.episode_parts_dir / f"{p}.parquet") for p in self.episode_parts()])

    def read_steps(self, episode_ids: Iterable[str] | None = None) -> pd.DataFrame:
        if self.is_done() and self.steps_path.exists():
            frame = pd.read_parquet(self.steps_path)
        elif self.steps_parts_dir.exists():
            frame = _concat([pd.read_parquet(p) for p in sorted(self.steps_parts_dir.glob("*.parquet"))
                             if not p.name.startswith(".")])
        else:
            frame = pd.DataFrame()
        if episode_ids is not None and not frame.empty:
            frame = frame[frame["episode_id"].isin(set(episode_ids))]
        return frame

    # lazy readers: a subset of columns, one episode's steps (the viewer reads runs this way) ---
    def episode_files(self) -> list[Path]:
        """The files that hold the evaluation rows now: ``episodes.parquet`` once finished, else the parts."""
        if self.is_done() and self.episodes_path.exists():
            return [self.episodes_path]
        return [self.episode_parts_dir / f"{p}.parquet" for p in self.episode_parts()]

    def step_files(self) -> list[Path]:
        """The files that hold the step transcripts now (``steps.parquet`` once finished, else the parts)."""
        if self.is_done() and self.steps_path.exists():
            return [self.steps_path]
        if not self.steps_parts_dir.exists():
            return []
        return sorted(p for p in self.steps_parts_dir.glob("*.parquet") if not p.name.startswith("."))

    def read_episode_table(self, columns: Sequence[str]) -> pa.Table:
        """Only ``columns`` of the evaluation rows, as an Arrow table, without reading the others.

        Columns a file lacks come back as nulls; a part that disappears while being listed (a
        resume dropping later rounds) is skipped, so a live run can always be read.
        """
        tables = []
        for path in self.episode_files():
            table = _read_parquet_columns(path, columns)
            if table is not None:
                tables.append(table)
        if not tables:
            return pa.table({c: pa.array([], pa.null()) for c in columns})
        return pa.concat_tables(tables, promote_options="permissive")

    def read_episode_columns(self, columns: Sequence[str]) -> pd.DataFrame:
        """:meth:`read_episode_table` as a DataFrame."""
        return self.read_episode_table(columns).to_pandas()

    def read_episode_steps(self, episode_id: str, part: str | None = None) -> pd.DataFrame:
        """The steps of one episode, sorted by step.

        With ``part`` (the evaluation round, e.g. ``iter_000005``) only that round's step file is
        read when it exists; either way only the row groups that can hold the episode are decoded.
        """
        files = self.step_files()
        if part is not None:
            own = self.steps_parts_dir / f"{part}.parquet"
            if own.exists():
                files = [own]
        return read_episode_steps_from(files, episode_id)

    def drop_parts_after(self, iteration: int) -> None:
        """Forget metrics and evaluation rounds after ``iteration`` (used when resuming)."""
        rows = [r for r in self.read_metrics() if r.get("iteration", -1) <= iteration]
        if self.metrics_path.exists():
            atomic_write_text(self.metrics_path, to_jsonl(rows))
        for folder in (self.episode_parts_dir, self.steps_parts_dir):
            if not folder.exists():
                continue
            for p in folder.glob("iter_*.parquet"):
                m = re.match(r"iter_(\d+)", p.stem)
                if m and int(m.group(1)) > iteration:
                    p.unlink()

    # checkpoints ----------------------------------------------------------------------------
    def checkpoints(self) -> list[Checkpoint]:
        """Complete checkpoints, oldest first (a checkpoint is complete once renamed into place)."""
        if not self.checkpoints_dir.exists():
            return []
        found = []
        for child in self.checkpoints_dir.iterdir():
            m = _ITER_DIR.match(child.name)
            if m and child.is_dir() and (child / "COMPLETE").exists():
                found.append(Checkpoint(int(m.group(1)), child))
        return sorted(found, key=lambda c: c.iteration)

    def latest_checkpoint(self) -> Checkpoint | None:
        ckpts = self.checkpoints()
        return ckpts[-1] if ckpts else None

    def save_checkpoint(self, iteration: int, writer: Callable[[Path], None], keep: int = 2) -> Path:
        """``writer(folder)`` fills a temporary folder that is then renamed to ``iter_NNNNNN``."""
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        final = self.checkpoints_dir / f"iter_{iteration:06d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-iter_{iteration:06d}-", dir=self.checkpoints_dir))
        try:
            writer(tmp)
            atomic_write_json(tmp / "COMPLETE", {"iteration": iteration, "time": time.time()})
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            _fsync_dir(self.checkpoints_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in self.checkpoints()[:-keep]:
            shutil.rmtree(old.path, ignore_errors=True)
        for stale in self.checkpoints_dir.glob(".tmp-iter_*"):
            if stale != tmp:
                shutil.rmtree(stale, ignore_errors=True)
        return final

    # finishing ------------------------------------------------------------------------------
    def finalize(self, summary: dict[str, Any] | None = None) -> None:
        """Consolidate the episode (and step) parts and write DONE, in that order."""
        episodes = _concat([pd.read_parquet(self.episode_parts_dir / f"{p}.parquet") for p in self.episode_parts()])
        atomic_write_parquet(self.episodes_path, episodes)
        if self.steps_parts_dir.exists():
            parts = [pd.read_parquet(p) for p in sorted(self.steps_parts_dir.glob("*.parquet"))
                     if not p.name.startswith(".")]
            atomic_write_parquet(self.steps_path, _concat(parts))
        atomic_write_json(self.done_path, {"finished": time.time(), **(summary or {})})

    # skills ---------------------------------------------------------------------------------
    def append_skill_events(self, events: Iterable[dict[str, Any]]) -> None:
        events = list(events)
        if not events:
            return
        text = self.skills_path.read_text(encoding="utf-8") if self.skills_path.exists() else ""
        atomic_write_text(self.skills_path, text + to_jsonl(events))


def _check_part_name(part: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", part):
        raise ValueError(f"bad episode part name {part!r}")


def read_episode_steps_from(files: Iterable[Path], episode_id: str) -> pd.DataFrame:
    """The rows of ``episode_id`` in step parquet ``files``, sorted by step (files that vanished
    are skipped; only row groups that can hold the episode are decoded)."""
    frames = []
    for path in files:
        try:
            table = pq.read_table(path, filters=[("episode_id", "==", episode_id)])
        except FileNotFoundError:
            continue
        if table.num_rows:
            frames.append(table.to_pandas())
    if not frames:
        return pd.DataFrame(columns=list(STEP_COLUMNS))
    return pd.concat(frames, ignore_index=True).sort_values("step", kind="stable").reset_index(drop=True)


def _read_parquet_columns(path: Path, columns: Sequence[str]) -> pa.Table | None:
    """``columns`` of one parquet file (missing ones as nulls), in that order; None if it vanished."""
    try:
        with pq.ParquetFile(path) as parquet:
            names = set(parquet.schema_arrow.names)
            table = parquet.read(columns=[c for c in columns if c in names])
    except FileNotFoundError:
        return None
    arrays = [table.column(c) if c in names else pa.nulls(table.num_rows) for c in columns]
    return pa.table(arrays, names=list(columns))


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=list(EPISODE_COLUMNS))
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------------------------
# Reading many runs
# ----------------------------------------------------------------------------------------------
def find_run_dirs(root: str | Path) -> list[RunDir]:
    """Every run folder (one holding config.yaml) under ``root``, sorted by path."""
    root = Path(root)
    if not root.exists():
        raise RunStateError(f"runs folder {str(root)!r} does not exist")
    if (root / "config.yaml").exists():
        return [RunDir(root)]
    return [RunDir(p.parent) for p in sorted(root.rglob("config.yaml")) if "checkpoints" not in p.parts]


def load_runs(root: str | Path, include_unfinished: bool = False) -> pd.DataFrame:
    """Evaluation episodes of every run under ``root`` in one DataFrame.

    Unfinished runs (no DONE marker) are skipped with a warning unless ``include_unfinished``.
    A ``run`` column holds the run folder's path relative to ``root``.
    """
    root = Path(root)
    frames = []
    skipped = []
    for run in find_run_dirs(root):
        if not run.is_done() and not include_unfinished:
            skipped.append(str(run.path.relative_to(root)) if run.path != root else run.path.name)
            continue
        frame = run.read_episodes()
        if frame.empty:
            continue
        rel = str(run.path.relative_to(root)) if run.path != root else run.path.name
        frame = frame.copy()
        frame["run"] = rel
        frames.append(frame)
    if skipped:
        warnings.warn(f"skipping {len(skipped)} unfinished run(s) (no DONE marker): {', '.join(skipped[:5])}"
                      + (" ..." if len(skipped) > 5 else ""), stacklevel=2)
    return _concat(frames)


def load_metrics(root: str | Path, include_unfinished: bool = True) -> pd.DataFrame:
    """Per-iteration metrics of every run under ``root`` (with a ``run`` column)."""
    root = Path(root)
    rows = []
    for run in find_run_dirs(root):
        if not run.is_done() and not include_unfinished:
            continue
        rel = str(run.path.relative_to(root)) if run.path != root else run.path.name
        for r in run.read_metrics():
            rows.append({"run": rel, **r})
    return pd.DataFrame(rows)

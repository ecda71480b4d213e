"""Reading a runs folder for a report: episodes, metrics, configs, fingerprints, skill events.

Each run gets an *arm* (the algorithm plus its grid cell, e.g. ``siri`` or
``siri[validation=false]``) and an *env* label. Runs of one arm differ only in their seed. Before
runs are compared, their fingerprints are checked (issue "trustworthy runs"): runs of one env
whose data or environment fingerprints differ are refused, naming the field, unless
``allow_mismatch`` (then the report says so).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from siri_bench.errors import RunStateError
from siri_bench.store import RunDir, find_run_dirs, read_jsonl

log = logging.getLogger(__name__)

#: fingerprint fields that must agree between compared runs of one env (dotted; dict values are
#: compared key by key over the keys both runs have)
FINGERPRINT_MUST_MATCH = ("data", "env", "packages.alfworld", "packages.textworld", "packages.gymnasium")
MEMORY_SCOPES = ("none", "task", "run")


@dataclass
class RunRecord:
    """One run folder as a report sees it."""

    run: str                 # path relative to the runs folder (unique)
    name: str                # folder name
    arm: str
    algorithm: str
    env: str                 # short env label (alfworld, webshop, ...)
    env_id: str
    split: str
    seed: int
    done: bool
    memory_scope: str
    config: dict[str, Any]
    fingerprint: dict[str, Any] | None
    train_seconds: float | None
    device: str
    n_episodes: int = 0


@dataclass
class Study:
    """Everything a report reads, with the notes it must print."""

    root: Path
    runs: list[RunRecord]
    episodes: pd.DataFrame                 # every evaluation round, with arm and env columns
    metrics: pd.DataFrame
    skills: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    def final(self) -> pd.DataFrame:
        """Each run's last evaluation round (a task's sequential retries count once, on its last trial)."""
        from reports.stats.tables import final_evaluation

        return final_evaluation(self.episodes)

    def last_round(self) -> pd.DataFrame:
        """Every row of each run's last evaluation round, retried trials included (costs, trials)."""
        if self.episodes.empty:
            return self.episodes
        last = self.episodes.groupby("run")["iteration"].transform("max")
        return self.episodes[self.episodes["iteration"] == last]

    def runs_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{k: v for k, v in r.__dict__.items() if k not in ("config", "fingerprint")}
                             for r in self.runs])

    def run(self, run: str) -> RunRecord:
        return next(r for r in self.runs if r.run == run)

    def envs(self) -> list[str]:
        return sorted({r.env for r in self.runs if r.n_episodes})

    def arms(self, env: str | None = None) -> list[str]:
        return sorted({r.arm for r in self.runs if r.n_episodes and (env is None or r.env == env)})


def short_env(env_id: str) -> str:
    """``siri_bench/ALFWorld-v0`` -> ``alfworld`` (the same rule run names use)."""
    return env_id.split("/")[-1].split("-v")[0].lower()


def arm_of(name: str, algorithm: str, env_id: str, seed: int) -> str:
    """The arm of a run from its stable name ``{algo}-{env}[-{cell}]-s{seed}``."""
    base = re.sub(rf"-s{seed}$", "", name)
    prefix = f"{_slug(algorithm)}-{short_env(env_id)}"
    if base == prefix:
        return algorithm
    if base.startswith(prefix + "-"):
        return f"{algorithm}[{base[len(prefix) + 1:]}]"
    return base


def _slug(text: str) -> str:
    text = text.split("/")[-1]
    return re.sub(r"[^A-Za-z0-9_.\-]+", "-", text).strip("-")[:40] or "x"


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise RunStateError(f"{path} is not valid JSON") from None
    return data if isinstance(data, dict) else None


def training_seconds(metrics: list[dict[str, Any]], done: dict[str, Any] | None) -> float | None:
    """Training wall time of a run: the sum of ``time/iteration_s`` over iterations (else of
    ``time/rollout_s`` + ``time/update_s``), else ``train_seconds`` in the DONE summary."""
    if any("time/iteration_s" in m for m in metrics):
        return float(sum(float(m.get("time/iteration_s") or 0.0) for m in metrics))
    parts = [k for k in ("time/rollout_s", "time/update_s") if any(k in m for m in metrics)]
    if parts:
        return float(sum(float(m.get(k) or 0.0) for m in metrics for k in parts))
    if done and isinstance(done.get("train_seconds"), (int, float)):
        return float(done["train_seconds"])
    return None


def memory_scope_of(episodes: pd.DataFrame, fingerprint: dict[str, Any] | None, done: dict[str, Any] | None,
                    config: dict[str, Any], algorithm: str) -> str:
    """What state the run's algorithm carries across episodes: recorded data first, then the registry."""
    if "memory_scope" in episodes.columns and episodes["memory_scope"].notna().any():
        return str(episodes["memory_scope"].dropna().iloc[0])
    for source in (fingerprint or {}, done or {}, config.get("algorithm") or {}):
        if source.get("memory_scope") in MEMORY_SCOPES:
            return str(source["memory_scope"])
    try:
        from siri_bench.registry import ALGORITHMS

        return str(getattr(ALGORITHMS.get(algorithm), "memory_scope", "unknown"))
    except Exception:  # an algorithm not installed here: say so instead of guessing
        return "unknown"


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{"a.b.c": value}``."""
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: tree}


def fingerprint_mismatches(runs: list[RunRecord]) -> list[str]:
    """One line per fingerprint field whose value differs between runs of the same env."""
    problems = []
    for env in sorted({r.env for r in runs}):
        group = [r for r in runs if r.env == env and r.fingerprint]
        values: dict[str, dict[str, list[str]]] = {}
        for r in group:
            flat = flatten(r.fingerprint)
            for key, value in flat.items():
                if any(key == f or key.startswith(f + ".") for f in FINGERPRINT_MUST_MATCH):
                    values.setdefault(key, {}).setdefault(json.dumps(value, sort_keys=True), []).append(r.name)
        for key, by_value in sorted(values.items()):
            if len(by_value) > 1:
                shown = "; ".join(f"{v[:24]} in {', '.join(sorted(names)[:3])}" + (" ..." if len(names) > 3 else "")
                                  for v, names in sorted(by_value.items()))
                problems.append(f"{env}: fingerprint field {key} differs between runs ({shown})")
    return problems


def load_study(root: str | Path, include_unfinished: bool = False, allow_mismatch: bool = False) -> Study:
    """Read every run under ``root`` (finished ones only, unless ``include_unfinished``)."""
    root = Path(root)
    run_dirs = find_run_dirs(root)
    if not run_dirs:
        raise RunStateError(f"no run folders (with config.yaml) under {root}")
    records: list[RunRecord] = []
    episodes, metrics, skills = [], [], []
    notes: list[str] = []
    skipped = []
    for run_dir in run_dirs:
        rel = str(run_dir.path.relative_to(root)) if run_dir.path != root else run_dir.path.name
        if not run_dir.is_done() and not include_unfinished:
            skipped.append(rel)
            continue
        record, frame, run_metrics, run_skills = _read_run(run_dir, rel)
        records.append(record)
        if frame.empty:
            notes.append(f"Run {rel} has no evaluation episodes; it appears in no statistic.")
        else:
            episodes.append(frame)
        metrics.extend({"run": rel, "arm": record.arm, "env": record.env, **m} for m in run_metrics)
        skills.extend({"run": rel, "arm": record.arm, "env": record.env, **s} for s in run_skills)
    if skipped:
        notes.append(f"{len(skipped)} unfinished run(s) (no DONE marker) are left out: {', '.join(skipped[:8])}"
                     + (" ..." if len(skipped) > 8 else "") + "; use --include-unfinished to include them.")
    if include_unfinished and any(not r.done for r in records):
        notes.append("Unfinished runs are included (--include-unfinished): their last evaluation round may be "
                     "earlier than other runs'.")
    if not records:
        raise RunStateError(f"no finished runs under {root} ({len(skipped)} unfinished); "
                            "use --include-unfinished to report on them")
    missing_fp = [r.name for r in records if r.fingerprint is None]
    if missing_fp:
        notes.append(f"{len(missing_fp)} run(s) have no fingerprint.json, so their data and environment versions "
                     f"cannot be checked: {', '.join(missing_fp[:6])}" + (" ..." if len(missing_fp) > 6 else ""))
    mismatches = fingerprint_mismatches(records)
    if mismatches and not allow_mismatch:
        raise RunStateError(f"refusing to compare runs with different fingerprints: {mismatches[0]}"
                            + (f" (and {len(mismatches) - 1} more)" if len(mismatches) > 1 else "")
                            + "; pass --allow-mismatch to compare them anyway (the report will say so)")
    all_episodes = pd.concat(episodes, ignore_index=True) if episodes else pd.DataFrame()
    _label_splits(records, all_episodes)
    _qualify_arms(records, all_episodes, notes)
    env_of = {r.run: r.env for r in records}
    arm_of_run = {r.run: r.arm for r in records}
    for rows in (metrics, skills):
        for row in rows:
            row["env"] = env_of[row["run"]]
            row["arm"] = arm_of_run[row["run"]]
    return Study(root, records, all_episodes, pd.DataFrame(metrics), pd.DataFrame(skills), notes, mismatches)


def _read_run(run_dir: RunDir, rel: str) -> tuple[RunRecord, pd.DataFrame, list[dict], list[dict]]:
    config = run_dir.read_config()
    algorithm = str((config.get("algorithm") or {}).get("name", "unknown"))
    env_cfg = config.get("env") or {}
    env_id = str(env_cfg.get("id", "unknown"))
    split = str((config.get("eval") or {}).get("split") or env_cfg.get("eval_split") or "")
    seeds = config.get("seeds") or [0]
    seed = int(seeds[0])
    fingerprint = _read_json(run_dir.fingerprint_path)
    done = _read_json(run_dir.done_path)
    frame = run_dir.read_episodes()
    run_metrics = run_dir.read_metrics()
    arm = arm_of(run_dir.path.name, algorithm, env_id, seed)
    record = RunRecord(
        run=rel, name=run_dir.path.name, arm=arm, algorithm=algorithm, env=short_env(env_id), env_id=env_id,
        split=split, seed=seed, done=run_dir.is_done(),
        memory_scope=memory_scope_of(frame, fingerprint, done, config, algorithm), config=config,
        fingerprint=fingerprint, train_seconds=training_seconds(run_metrics, done),
        device=str((fingerprint or {}).get("device") or (config.get("policy") or {}).get("device") or "unknown"),
        n_episodes=len(frame),
    )
    if not frame.empty:
        frame = frame.copy()
        frame["run"] = rel
        frame["arm"] = arm
        frame["env"] = record.env
        if "seed" not in frame.columns or frame["seed"].isna().any():
            frame["seed"] = seed
        if "algorithm" not in frame.columns:
            frame["algorithm"] = algorithm
    return record, frame, run_metrics, read_jsonl(run_dir.skills_path)


def _qualify_arms(records: list[RunRecord], episodes: pd.DataFrame, notes: list[str]) -> None:
    """Runs of several experiments that share arm names and seeds: arms are named experiment/arm,
    so that two experiments' seeds are never pooled as if they were one arm's."""
    seen: set[tuple[str, str, int]] = set()
    clash = False
    for r in records:
        key = (r.env, r.arm, r.seed)
        clash = clash or key in seen
        seen.add(key)
    if not clash:
        return
    for r in records:
        r.arm = f"{r.config.get('name', 'experiment')}/{r.arm}"
        if not episodes.empty:
            episodes.loc[episodes["run"] == r.run, "arm"] = r.arm
    notes.append("Runs of several experiments share arm names and seeds, so arms are named experiment/arm.")


def _label_splits(records: list[RunRecord], episodes: pd.DataFrame) -> None:
    """When one env was evaluated on several splits, the env label names the split (env:split)."""
    by_env: dict[str, set[str]] = {}
    for r in records:
        by_env.setdefault(r.env, set()).add(r.split)
    for r in records:
        if len(by_env[r.env]) > 1:
            label = f"{r.env}:{r.split}"
            if not episodes.empty:
                episodes.loc[episodes["run"] == r.run, "env"] = label
            r.env = label

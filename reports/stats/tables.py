"""From a tidy DataFrame of evaluation episodes to the arrays the statistics take.

Episode rows are those written by :mod:`siri_bench.store` (``EPISODE_COLUMNS``). The final
evaluation of a run is its rows with the largest ``iteration``; learning curves use every round.
A cell (run, task) is the mean over that run's episodes of the task. A run that lacks a task the
other runs of its group have is an error naming the run (nothing is dropped silently).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from reports.stats.aggregates import pass_at_k, pass_hat_k
from reports.stats.validation import MissingCellsError


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str = "episodes") -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MissingCellsError(f"{what} lack column(s) {', '.join(missing)} (have: {', '.join(map(str, frame.columns))})")


def final_evaluation(episodes: pd.DataFrame, run_col: str = "run") -> pd.DataFrame:
    """Each run's rows from its last evaluation round (largest ``iteration``).

    Sequential retries of one task (Reflexion's trials) count once, on their last trial: rows whose
    ``final_trial`` is False (a failed trial that was tried again) are left out, so a task's outcome
    is "solved within the trials"; :func:`trial_success` gives the per-trial view.
    """
    require_columns(episodes, [run_col, "iteration"])
    if episodes.empty:
        return episodes
    last = episodes.groupby(run_col)["iteration"].transform("max")
    final = episodes[episodes["iteration"] == last]
    if "final_trial" in final.columns:
        final = final[final["final_trial"].fillna(True).astype(bool)]
    return final


def trial_success(final_round: pd.DataFrame, value: str = "won", run_col: str = "run") -> pd.DataFrame:
    """Success within k sequential trials, per run: one row per (run, trial k = 1..K) with the share of
    (task, repeat) chains solved by trial k (a chain that stopped early keeps its outcome).

    ``final_round`` holds every trial's row (``trial``, ``final_trial``, and ``repeat`` when tasks were
    repeated) of each run's last round; runs without ``final_trial`` rows give no rows.
    """
    if final_round.empty or "final_trial" not in final_round.columns or final_round["final_trial"].isna().all():
        return pd.DataFrame(columns=[run_col, "trial", "value", "chains"])
    frame = final_round[final_round["final_trial"].notna()].copy()
    frame["_repeat"] = frame["repeat"] if "repeat" in frame.columns else 0
    rows = []
    for run, part in frame.groupby(run_col, sort=True):
        last = part[part["final_trial"].astype(bool)]
        solved_at = [int(t) if float(v) > 0 else None for t, v in zip(last["trial"], last[value].astype(float))]
        k_max = int(part["trial"].max()) + 1
        for k in range(1, k_max + 1):
            hits = sum(1 for t in solved_at if t is not None and t < k)
            rows.append({run_col: run, "trial": k, "value": hits / max(1, len(solved_at)), "chains": len(solved_at)})
    return pd.DataFrame(rows)


def score_matrix(episodes: pd.DataFrame, value: str = "won", task_col: str = "task_id",
                 run_col: str = "run", name: str = "episodes") -> pd.DataFrame:
    """Runs x tasks DataFrame of per-cell means; an error names runs that lack tasks."""
    require_columns(episodes, [run_col, task_col, value])
    if episodes.empty:
        raise MissingCellsError(f"{name}: no evaluation episodes")
    values = episodes[value].astype(float)
    if values.isna().any():
        runs = sorted(episodes.loc[values.isna(), run_col].astype(str).unique())
        raise MissingCellsError(f"{name}: column {value!r} is missing in episodes of run(s) {', '.join(runs[:6])}")
    matrix = values.groupby([episodes[run_col].astype(str), episodes[task_col].astype(str)]).mean().unstack(task_col)
    missing = matrix.isna()
    if missing.any().any():
        lines = []
        for run, row in missing.iterrows():
            if row.any():
                tasks = list(row.index[row.to_numpy()])
                lines.append(f"{run} lacks {len(tasks)} task(s) (e.g. {', '.join(tasks[:3])})")
        raise MissingCellsError(f"{name}: runs were evaluated on different tasks: {'; '.join(lines[:6])}; "
                                "nothing is dropped silently: re-evaluate them on the same panel")
    return matrix.sort_index(axis=0).sort_index(axis=1)


def score_matrices(episodes: pd.DataFrame, group_col: str = "arm", value: str = "won", task_col: str = "task_id",
                   run_col: str = "run", same_tasks: bool = True) -> dict[str, pd.DataFrame]:
    """``{group: runs x tasks}``; with ``same_tasks`` every group must cover the same tasks."""
    require_columns(episodes, [group_col])
    out = {str(g): score_matrix(part, value, task_col, run_col, name=str(g))
           for g, part in episodes.groupby(group_col, sort=True)}
    if same_tasks and out:
        reference_name, reference = next(iter(out.items()))
        for g, m in out.items():
            if list(m.columns) != list(reference.columns):
                only_here = sorted(set(m.columns) - set(reference.columns))
                only_there = sorted(set(reference.columns) - set(m.columns))
                raise MissingCellsError(
                    f"{g!r} and {reference_name!r} were evaluated on different tasks ({len(only_here)} only in "
                    f"{g!r}, {len(only_there)} only in {reference_name!r}); compare them on one panel")
    return out


def episodes_to_scores(episodes: pd.DataFrame, group_col: str | None = None, value: str = "won",
                       task_col: str = "task_id", final: bool = True) -> dict[str, pd.DataFrame]:
    """``{algorithm: runs x tasks}`` from a tidy episode table (each run's final round by default).

    Groups by ``arm`` when the table has it (reports add it), else by ``algorithm``.
    """
    if group_col is None:
        group_col = "arm" if "arm" in episodes.columns else "algorithm"
    frame = final_evaluation(episodes) if final else episodes
    return score_matrices(frame, group_col=group_col, value=value, task_col=task_col, same_tasks=False)


def per_seed_values(episodes: pd.DataFrame, value: str = "won", run_col: str = "run") -> pd.Series:
    """Mean of ``value`` per run (the per-seed aggregate of a fixed panel)."""
    require_columns(episodes, [run_col, value])
    return episodes[value].astype(float).groupby(episodes[run_col].astype(str)).mean().sort_index()


def pass_k_per_run(episodes: pd.DataFrame, k: int, kind: str = "pass@k", value: str = "won",
                   task_col: str = "task_id", run_col: str = "run") -> pd.Series:
    """pass@k or pass^k per run: the unbiased estimator per task (over its trials), averaged over tasks."""
    require_columns(episodes, [run_col, task_col, value])
    grouped = episodes[value].astype(float).groupby([episodes[run_col].astype(str), episodes[task_col].astype(str)])
    counts = pd.DataFrame({"n": grouped.size(), "c": grouped.sum()})
    if (counts["n"] < k).any():
        short = counts[counts["n"] < k].index.get_level_values(0).unique()
        raise MissingCellsError(f"{kind} with k={k} needs at least {k} trials per task; run(s) "
                                f"{', '.join(map(str, short[:6]))} have fewer")
    fn = pass_at_k if kind == "pass@k" else pass_hat_k
    counts["value"] = fn(counts["n"].to_numpy(), counts["c"].to_numpy(), k)
    return counts["value"].groupby(level=0).mean()


def align_pairs(x: pd.Series, y: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Align two per-key series (e.g. per seed) for a paired test; an error names unmatched keys."""
    only_x = sorted(set(x.index) - set(y.index))
    only_y = sorted(set(y.index) - set(x.index))
    if only_x or only_y:
        raise MissingCellsError(f"paired comparison needs the same keys on both sides; only in x: "
                                f"{', '.join(map(str, only_x[:6])) or '-'}; only in y: {', '.join(map(str, only_y[:6])) or '-'}")
    keys = sorted(x.index)
    return x.loc[keys].to_numpy(dtype=float), y.loc[keys].to_numpy(dtype=float)

"""The numbers of a report, as tidy DataFrames (the results browser reuses them).

:func:`analyse` takes a :class:`~reports.runs.Study` and :class:`~reports.options.ReportOptions`
and computes every table: final results with intervals, aggregate metrics, comparisons against the
baseline with the declared correction, probability of improvement, per task type results,
learning curves, performance profiles, episode status rates, cost, the ablation family, the
skill bank summary and the quoted reference numbers. All random draws come from one
``numpy.random.SeedSequence`` (``options.seed``), keyed by what is computed.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reports.options import ReportOptions
from reports.references import ReferenceNumbers, load_references
from reports.runs import Study
from reports.stats import (
    StatisticsWarning,
    adjust_pvalues,
    child_seed,
    clustered_rate_interval,
    compare,
    curve_intervals,
    interval_estimates,
    interval_method,
    performance_profile,
    probability_of_improvement_matrix,
    t_interval,
    tost,
)
from reports.stats.comparisons import TEST_NAMES
from reports.stats.corrections import METHOD_NAMES
from reports.stats.tables import align_pairs, pass_k_per_run, score_matrices, score_matrix
from reports.stats.validation import MissingCellsError
from siri_bench.errors import ConfigError
from siri_bench.store import EPISODE_STATUSES

METRIC_COLUMNS = {"success": "won", "score": "score"}


@dataclass
class Analysis:
    """Every table of a report (DataFrames) plus the sentences that explain them."""

    options: ReportOptions
    summary: pd.DataFrame            # env, arm, algorithm, metric, n_seeds, point, low, high, method
    aggregates: pd.DataFrame         # env, arm, metric (mean/median/iqm/optimality_gap), point, low, high
    aggregate_unit: dict[str, str]   # env -> what a "task" is in the aggregates (task type or task id)
    pass_k: pd.DataFrame             # env, arm, kind (pass@k / pass^k), k, point, low, high (repeated trials only)
    comparisons: pd.DataFrame        # env, arm, baseline, estimate, low, high, p_value, p_adjusted, ...
    comparison_family: str
    poi: dict[str, dict[tuple[str, str], dict[str, float]]]
    task_types: pd.DataFrame
    curves: pd.DataFrame             # env, arm, run, seed, iteration, value
    curve_bands: pd.DataFrame        # env, arm, iteration, point, low, high, n
    profiles: dict[str, dict[str, dict[str, np.ndarray]]]
    status: pd.DataFrame
    trials: pd.DataFrame             # env, arm, trial k, n_seeds, point, low, high: solved within k trials
    cost: pd.DataFrame
    per_seed: pd.DataFrame
    ablation: pd.DataFrame | None
    ablation_text: str
    skills: pd.DataFrame | None      # the skill events
    skill_summary: pd.DataFrame | None
    references: pd.DataFrame | None
    reference_info: ReferenceNumbers | None
    memory_notes: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def baseline(self) -> str | None:
        return self.options.baseline


def analyse(study: Study, options: ReportOptions | dict | None = None) -> Analysis:
    """Compute every table of the report for ``study``."""
    options = ReportOptions.parse(options)
    if study.episodes.empty:
        raise MissingCellsError(f"no evaluation episodes under {study.root}: nothing to report")
    final = study.final()
    notes: list[str] = []
    for metric, column in METRIC_COLUMNS.items():
        if column in final.columns and final[column].isna().any():
            runs = sorted(final.loc[final[column].isna(), "run"].unique())
            where = (f"{metric} is missing in {int(final[column].isna().sum())} final episode(s) of "
                     f"{', '.join(runs[:5])}{' ...' if len(runs) > 5 else ''}")
            if metric == options.metric:
                raise MissingCellsError(f"{where}: nothing is dropped silently; fix those runs or choose another "
                                        "report.metric")
            notes.append(f"{where}, so {metric} is not reported.")
    summary = _summary(final, options)
    aggregates, unit = _aggregates(final, options, notes)
    comparisons, family_text = _comparisons(study, final, options)
    poi = _poi(final, options)
    curves, bands = _curves(study.episodes, options)
    ablation, ablation_text = _ablation(study, final, options)
    skill_summary = _skill_summary(study)
    refs = load_references(options.references)
    return Analysis(
        options=options, summary=summary, aggregates=aggregates, aggregate_unit=unit, pass_k=_pass_k(final, options),
        comparisons=comparisons,
        comparison_family=family_text, poi=poi, task_types=_task_types(final, options), curves=curves,
        curve_bands=bands, profiles=_profiles(final, options), status=_status(final, options),
        trials=_trials(study.last_round(), options), cost=_cost(study, final, options), per_seed=_per_seed(study, final), ablation=ablation,
        ablation_text=ablation_text, skills=study.skills if not study.skills.empty else None,
        skill_summary=skill_summary, references=_references(refs, summary), reference_info=refs,
        memory_notes=_memory_notes(study), notes=notes,
    )


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _quiet(fn, *args, **kwargs):
    """Call a statistic whose small-sample warnings the report states in words anyway."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticsWarning)
        return fn(*args, **kwargs)


def _clip_rate(low: float, high: float) -> tuple[float, float]:
    """Success and score live in [0, 1]: interval bounds outside it are clipped (the truth is inside)."""
    return (max(0.0, low) if math.isfinite(low) else low, min(1.0, high) if math.isfinite(high) else high)


def _value_columns(final: pd.DataFrame) -> list[tuple[str, str]]:
    return [(m, c) for m, c in METRIC_COLUMNS.items() if c in final.columns and final[c].notna().all()]


def _arm_algorithms(final: pd.DataFrame) -> dict[str, str]:
    return final.groupby("arm")["algorithm"].first().astype(str).to_dict()


def _seed_lists(final: pd.DataFrame) -> dict[tuple[str, str], list[int]]:
    return {k: sorted(int(s) for s in v.unique()) for k, v in final.groupby(["env", "arm"])["seed"]}


def _env_matrices(final_env: pd.DataFrame, value: str, task_col: str = "task_id",
                  same_tasks: bool = True) -> dict[str, pd.DataFrame]:
    return score_matrices(final_env, group_col="arm", value=value, task_col=task_col, same_tasks=same_tasks)


def _aggregate_task_column(final_env: pd.DataFrame) -> str:
    """rliable's 'tasks' for LLM agents: task types when there are several, else task ids."""
    if "task_type" in final_env.columns and final_env["task_type"].notna().all() and final_env["task_type"].nunique() > 1:
        return "task_type"
    return "task_id"


# ----------------------------------------------------------------------------------------------
# final results
# ----------------------------------------------------------------------------------------------
def _summary(final: pd.DataFrame, options: ReportOptions) -> pd.DataFrame:
    rows = []
    algorithms = _arm_algorithms(final)
    seeds = _seed_lists(final)
    for env, part in final.groupby("env", sort=True):
        for metric, column in _value_columns(part):
            matrices = _env_matrices(part, column, same_tasks=False)
            est = _quiet(interval_estimates, matrices, metrics=("mean",), reps=options.reps,
                         confidence=options.confidence, seed=child_seed(options.seed, "summary", env, metric),
                         mode=options.interval_mode)
            for arm, matrix in matrices.items():
                r = est[arm]["mean"]
                low, high = _clip_rate(r["low"], r["high"])
                rows.append({"env": env, "arm": arm, "algorithm": algorithms[arm], "metric": metric,
                             "n_seeds": matrix.shape[0], "seeds": seeds[(env, arm)], "n_tasks": matrix.shape[1],
                             "point": r["point"], "low": low, "high": high,
                             "method": interval_method("mean", options.interval_mode, options.reps)})
    return pd.DataFrame(rows)


def _aggregates(final: pd.DataFrame, options: ReportOptions, notes: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    rows, unit = [], {}
    column = options.value_column
    for env, part in final.groupby("env", sort=True):
        task_col = _aggregate_task_column(part)
        unit[env] = "task type" if task_col == "task_type" else "task"
        matrices = _env_matrices(part, column, task_col=task_col, same_tasks=False)
        metrics = ["mean", "median", "iqm", "optimality_gap"]
        binary = all(np.isin(m.to_numpy(), (0.0, 1.0)).all() for m in matrices.values())
        if binary:
            metrics = ["mean", "optimality_gap"]
            notes.append(f"{env}: median and IQM are left out because every (seed, {unit[env]}) cell is a single "
                         "binary outcome (an IQM of 0/1 values says nothing).")
        est = _quiet(interval_estimates, matrices, metrics=tuple(metrics), reps=options.reps,
                     confidence=options.confidence, seed=child_seed(options.seed, "aggregates", env),
                     mode=options.interval_mode)
        for arm, by_metric in est.items():
            for metric, r in by_metric.items():
                rows.append({"env": env, "arm": arm, "metric": metric, "n_seeds": matrices[arm].shape[0],
                             "point": r["point"], "low": r["low"], "high": r["high"],
                             "method": interval_method(metric, options.interval_mode, options.reps)})
    return pd.DataFrame(rows), unit


def _pass_k(final: pd.DataFrame, options: ReportOptions) -> pd.DataFrame:
    """pass@k and pass^k per arm when tasks were tried several times (unbiased estimators per task,
    averaged over tasks per run, t-interval over runs); k = 1 and k = the fewest trials of a task."""
    if "won" not in final.columns:
        return pd.DataFrame()
    rows = []
    for (env, arm), part in final.groupby(["env", "arm"], sort=True):
        trials = part.groupby(["run", "task_id"]).size()
        fewest = int(trials.min())
        if fewest < 2:
            continue
        for k in sorted({1, fewest}):
            for kind in ("pass@k", "pass^k"):
                per_run = pass_k_per_run(part, k, kind)
                t = t_interval(per_run.to_numpy(), options.confidence)
                low, high = _clip_rate(t["low"], t["high"])
                rows.append({"env": env, "arm": arm, "kind": kind, "k": k, "trials": fewest,
                             "n_seeds": int(t["n"]), "point": t["point"], "low": low, "high": high})
    return pd.DataFrame(rows)


def _task_types(final: pd.DataFrame, options: ReportOptions) -> pd.DataFrame:
    if "task_type" not in final.columns:
        return pd.DataFrame()
    rows = []
    column = options.value_column
    for (env, arm, task_type), part in final.groupby(["env", "arm", "task_type"], sort=True):
        per_run = part[column].astype(float).groupby(part["run"]).mean()
        t = t_interval(per_run.to_numpy(), options.confidence)
        low, high = _clip_rate(t["low"], t["high"])
        rows.append({"env": env, "arm": arm, "task_type": task_type, "n_seeds": int(t["n"]),
                     "episodes": len(part), "point": t["point"], "low": low, "high": high})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# comparisons
# ----------------------------------------------------------------------------------------------
def resolve_arm(name: str, arms: list[str], algorithms: dict[str, str], what: str = "baseline") -> str:
    """An arm named by the user: an arm name, or an algorithm with a single arm."""
    if name in arms:
        return name
    candidates = [a for a in arms if algorithms.get(a) == name]
    bare = [a for a in candidates if a == name]
    if len(candidates) == 1 or bare:
        return (bare or candidates)[0]
    if candidates:
        raise ConfigError(f"report.{what} = {name!r} matches several arms ({', '.join(candidates)}); name one")
    raise ConfigError(f"report.{what} = {name!r} is not an arm of this report; arms: {', '.join(arms)}")


def _pairs(final: pd.DataFrame, options: ReportOptions) -> list[tuple[str, str, str]]:
    arms_all = sorted(final["arm"].unique())
    algorithms = _arm_algorithms(final)
    pairs = []
    baseline = resolve_arm(options.baseline, arms_all, algorithms) if options.baseline else None
    for env, part in final.groupby("env", sort=True):
        arms = sorted(part["arm"].unique())
        if baseline is not None:
            if baseline in arms:
                pairs.extend((env, arm, baseline) for arm in arms if arm != baseline)
        else:
            pairs.extend((env, a, b) for i, a in enumerate(arms) for b in arms[i + 1:])
    return pairs


def _per_seed_series(matrix: pd.DataFrame, final_env: pd.DataFrame, arm: str) -> pd.Series:
    seed_of = final_env[final_env["arm"] == arm].groupby("run")["seed"].first()
    values = matrix.mean(axis=1)
    values.index = [int(seed_of[r]) for r in values.index]
    return values


def _check_same_instances(final_env: pd.DataFrame, a: str, b: str) -> None:
    cols = [c for c in ("task_id", "env_seed", "task_seed") if c in final_env.columns]

    def instances(arm: str) -> set:
        part = final_env[final_env["arm"] == arm]
        return set(map(tuple, part[["seed", *cols]].astype(str).to_numpy()))

    if instances(a) != instances(b):
        raise MissingCellsError(f"report.paired = true, but {a!r} and {b!r} did not run the same task instances "
                                f"and seeds ({', '.join(cols)}); use an unpaired test")


def _comparisons(study: Study, final: pd.DataFrame, options: ReportOptions) -> tuple[pd.DataFrame, str]:
    pairs = _pairs(final, options)
    rows = []
    column = options.value_column
    for env, arm, other in pairs:
        part = final[final["env"] == env]
        try:
            matrices = _env_matrices(part[part["arm"].isin([arm, other])], column)
        except MissingCellsError as exc:
            raise MissingCellsError(f"{env}: cannot compare {arm} with {other}: {exc}") from None
        x, y = _per_seed_series(matrices[arm], part, arm), _per_seed_series(matrices[other], part, other)
        row: dict[str, Any] = {"env": env, "arm": arm, "baseline": other, "n_x": len(x), "n_y": len(y)}
        if min(len(x), len(y)) < 2:
            row.update({"p_value": math.nan, "text": f"{arm} vs {other} on {env}: not tested, a test needs at least "
                                                      f"2 seeds per arm ({len(x)} and {len(y)} here)."})
            rows.append(row)
            continue
        if options.paired:
            _check_same_instances(part, arm, other)
            xv, yv = align_pairs(x, y)
        else:
            xv, yv = x.to_numpy(), y.to_numpy()
        result = _quiet(compare, xv, yv, test=options.test, paired=options.paired,
                        seed=child_seed(options.seed, "compare", env, arm, other), confidence=options.confidence,
                        alpha=options.alpha)
        row.update({k: v for k, v in result.as_dict().items() if k not in ("n_x", "n_y")})
        row["result"] = result
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame, "No comparison: the report has one arm per environment."
    finite = frame["p_value"].apply(lambda p: isinstance(p, float) and math.isfinite(p))
    frame["p_adjusted"] = math.nan
    if finite.any():
        adjusted = adjust_pvalues(frame.loc[finite, "p_value"].to_numpy(dtype=float), options.correction)
        frame.loc[finite, "p_adjusted"] = adjusted
    frame["significant"] = frame["p_adjusted"].apply(lambda p: bool(math.isfinite(p) and p <= options.alpha))
    label = options.correction.upper() if options.correction in ("bh", "by") else options.correction.capitalize()
    texts = []
    for _, r in frame.iterrows():
        result = r.get("result")
        if hasattr(result, "describe"):
            adjusted = r["p_adjusted"] if math.isfinite(r["p_adjusted"]) else None
            texts.append(f"{r['env']}: {result.describe(r['arm'], r['baseline'], adjusted, label)}")
        else:
            texts.append(r["text"])
    frame["text"] = texts
    frame = frame.drop(columns=["result"], errors="ignore")
    tested = int(finite.sum())
    untested = len(frame) - tested
    what = (f"every arm against the baseline {options.baseline!r}" if options.baseline
            else "every pair of arms (no baseline was named; set report.baseline to compare against one)")
    paired = "paired by seed, " if options.paired else ""
    family = (f"The comparison family is {what} on every environment: {tested} test(s). Each uses "
              f"{TEST_NAMES[frame['test'].dropna().iloc[0]] if tested else TEST_NAMES[options.test]} on per-seed "
              f"final {options.metric} ({paired}the training seed is the unit), and the p-values are corrected over "
              f"the family with {METHOD_NAMES[options.correction]}; a difference is called significant when the "
              f"adjusted p is at most {options.alpha:g}.")
    if untested:
        family += f" {untested} comparison(s) could not be tested (fewer than 2 seeds) and are not in the family."
    return frame, family


def _poi(final: pd.DataFrame, options: ReportOptions) -> dict[str, dict[tuple[str, str], dict[str, float]]]:
    out = {}
    for env, part in final.groupby("env", sort=True):
        if part["arm"].nunique() < 2:
            continue
        try:
            matrices = _env_matrices(part, options.value_column, task_col=_aggregate_task_column(part))
        except MissingCellsError:
            continue  # reported by the comparisons; profiles of unpaired task sets are not drawn
        out[env] = probability_of_improvement_matrix(
            {a: m.to_numpy() for a, m in matrices.items()}, reps=options.poi_reps,
            seed=child_seed(options.seed, "poi", env), confidence=options.confidence,
            mode=options.interval_mode)
    return out


def _profiles(final: pd.DataFrame, options: ReportOptions) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    out = {}
    taus = np.linspace(0.0, 1.0, 41)
    for env, part in final.groupby("env", sort=True):
        matrices = _env_matrices(part, options.value_column, task_col=_aggregate_task_column(part), same_tasks=False)
        out[env] = performance_profile({a: m.to_numpy() for a, m in matrices.items()}, taus, reps=options.poi_reps,
                                       confidence=options.confidence, seed=child_seed(options.seed, "profiles", env),
                                       mode=options.interval_mode)
    return out


def _curves(episodes: pd.DataFrame, options: ReportOptions) -> tuple[pd.DataFrame, pd.DataFrame]:
    column = options.value_column
    per_run = (episodes.groupby(["env", "arm", "run", "seed", "iteration"])[column].mean().rename("value")
               .reset_index())
    bands = []
    for (env, arm), part in per_run.groupby(["env", "arm"], sort=True):
        table = part.pivot(index="run", columns="iteration", values="value")
        c = curve_intervals(table.to_numpy(dtype=float), options.confidence)
        for i, it in enumerate(table.columns):
            low, high = _clip_rate(float(c["low"][i]), float(c["high"][i]))
            bands.append({"env": env, "arm": arm, "iteration": int(it), "point": c["point"][i], "low": low,
                          "high": high, "n": int(c["n"][i])})
    return per_run, pd.DataFrame(bands)


# ----------------------------------------------------------------------------------------------
# outcomes and cost
# ----------------------------------------------------------------------------------------------
def _status(final: pd.DataFrame, options: ReportOptions) -> pd.DataFrame:
    if "status" not in final.columns:
        return pd.DataFrame()
    rows = []
    present = [s for s in EPISODE_STATUSES if s in set(final["status"])]
    present += sorted(set(final["status"].dropna().astype(str)) - set(EPISODE_STATUSES))
    for (env, arm), part in final.groupby(["env", "arm"], sort=True):
        for status in present:
            hit = (part["status"].astype(str) == status).to_numpy(dtype=float)
            rate, low, high = clustered_rate_interval(hit, part["run"].to_numpy(), options.confidence)
            rows.append({"env": env, "arm": arm, "status": status, "count": int(hit.sum()), "episodes": len(part),
                         "rate": rate, "low": low, "high": high})
    return pd.DataFrame(rows)


def _mean_over_seeds(part: pd.DataFrame, column: str) -> float:
    if column not in part.columns or part[column].isna().all():
        return math.nan
    return float(part[column].astype(float).groupby(part["run"]).mean().mean())


def _trials(last_round: pd.DataFrame, options: ReportOptions) -> pd.DataFrame:
    """Success within k sequential trials (Reflexion), t-interval over seeds, for arms with trial chains."""
    from reports.stats.tables import trial_success

    if last_round.empty or "final_trial" not in last_round.columns or "won" not in last_round.columns:
        return pd.DataFrame()
    rows = []
    for (env, arm), part in last_round.groupby(["env", "arm"], sort=True):
        per_run = trial_success(part)
        for k, by_k in per_run.groupby("trial", sort=True):
            t = t_interval(by_k["value"].to_numpy(dtype=float), options.confidence)
            low, high = _clip_rate(t["low"], t["high"])
            rows.append({"env": env, "arm": arm, "trial": int(k), "n_seeds": int(t["n"]),
                         "tasks": int(by_k["chains"].iloc[0]), "point": t["point"], "low": low, "high": high})
    return pd.DataFrame(rows)


def _per_run_ratio(part: pd.DataFrame, numerator: str, denominator: str) -> float:
    """Mean over runs of sum(numerator) / sum(denominator) within each run (nan when a column is missing)."""
    if numerator not in part.columns or denominator not in part.columns:
        return math.nan
    sums = part[[numerator, denominator]].astype(float).groupby(part["run"]).sum()
    sums = sums[sums[denominator] > 0]
    return float((sums[numerator] / sums[denominator]).mean()) if len(sums) else math.nan


def _cost(study: Study, final: pd.DataFrame, options: ReportOptions) -> pd.DataFrame:
    """Training time and inference cost per arm. Inference cost comes from every episode of each run's
    last round (retried trials included): prompt tokens per step, tokens per episode, tokens per task
    (all trials of a task plus the writer's tokens: Reflexion's reflections, MemRL's memories) and wall
    time per episode."""
    runs = {r.run: r for r in study.runs}
    played = study.last_round()
    rows = []
    for (env, arm), part in final.groupby(["env", "arm"], sort=True):
        records = [runs[r] for r in part["run"].unique()]
        hours = [r.train_seconds / 3600 for r in records if r.train_seconds is not None]
        all_rows = played[(played["env"] == env) & (played["arm"] == arm)].copy()
        writer = [c for c in ("writer_prompt_tokens", "writer_completion_tokens") if c in all_rows.columns]
        all_rows["writer_tokens"] = all_rows[writer].fillna(0).sum(axis=1) if writer else 0.0
        all_rows["all_tokens"] = all_rows["tokens"].astype(float) + all_rows["writer_tokens"].astype(float)
        # a task attempt: Reflexion's trials of one (task, repeat) chain, else one episode
        if "repeat" in all_rows.columns:
            chain = all_rows["task_id"].astype(str) + "|" + all_rows["repeat"].astype(object).where(
                all_rows["repeat"].notna(), all_rows["episode_id"]).astype(str)
        else:
            chain = all_rows["episode_id"].astype(str)
        all_rows["_task_share"] = 1.0 / all_rows["run"].map(chain.groupby(all_rows["run"]).nunique())
        rows.append({
            "env": env, "arm": arm, "n_seeds": len(records),
            options.metric: _mean_over_seeds(part, options.value_column),
            "train_hours_per_seed": float(np.mean(hours)) if hours else math.nan,
            "train_hours_total": float(np.sum(hours)) if hours else math.nan,
            "device": ", ".join(sorted({r.device for r in records})),
            "tokens_per_episode": _mean_over_seeds(all_rows, "tokens"),
            "prompt_tokens_per_episode": _mean_over_seeds(all_rows, "prompt_tokens"),
            "completion_tokens_per_episode": _mean_over_seeds(all_rows, "completion_tokens"),
            "prompt_tokens_per_step": _per_run_ratio(all_rows, "prompt_tokens", "steps"),
            "writer_tokens_per_episode": _mean_over_seeds(all_rows, "writer_tokens"),
            "tokens_per_task": float((all_rows["all_tokens"] * all_rows["_task_share"]).groupby(all_rows["run"]).sum().mean()),
            "steps_per_episode": _mean_over_seeds(all_rows, "steps"),
            "seconds_per_episode": _mean_over_seeds(all_rows, "seconds"),
        })
    return pd.DataFrame(rows)


def _per_seed(study: Study, final: pd.DataFrame) -> pd.DataFrame:
    runs = {r.run: r for r in study.runs}
    rows = []
    for run, part in final.groupby("run", sort=True):
        r = runs[run]
        row = {"env": r.env, "arm": r.arm, "seed": r.seed, "run": run, "iteration": int(part["iteration"].max()),
               "episodes": len(part)}
        for metric, column in METRIC_COLUMNS.items():
            if column in part.columns:
                row[metric] = float(part[column].astype(float).mean())
        row["tokens_per_episode"] = float(part["tokens"].mean()) if "tokens" in part.columns else math.nan
        row["train_hours"] = r.train_seconds / 3600 if r.train_seconds is not None else math.nan
        row["done"] = r.done
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["env", "arm", "seed"]).reset_index(drop=True)


def _memory_notes(study: Study) -> list[str]:
    notes = []
    by_arm: dict[str, set[str]] = {}
    for r in study.runs:
        by_arm.setdefault(r.arm, set()).add(r.memory_scope)
    for arm, scopes in sorted(by_arm.items()):
        carrying = scopes - {"none"}
        if carrying & {"task", "run"}:
            notes.append(f"{arm} carries memory across episodes (scope: {', '.join(sorted(carrying))}): its episodes "
                         "are not independent, so its statistics use runs (training seeds) as the unit and no "
                         "per-episode test is applied to it.")
        elif "unknown" in carrying:
            notes.append(f"{arm}: the memory scope is not recorded and the algorithm is not installed here; "
                         "runs are the unit anyway.")
    return notes


# ----------------------------------------------------------------------------------------------
# ablation
# ----------------------------------------------------------------------------------------------
def _full_arm(final: pd.DataFrame, options: ReportOptions) -> str | None:
    arms = sorted(final["arm"].unique())
    algorithms = _arm_algorithms(final)
    if options.ablation.full:
        return resolve_arm(options.ablation.full, arms, algorithms, what="ablation.full")
    by_algorithm: dict[str, list[str]] = {}
    for arm in arms:
        by_algorithm.setdefault(algorithms[arm], []).append(arm)
    for algorithm, group in sorted(by_algorithm.items()):
        if len(group) < 2:
            continue
        named_full = [a for a in group if a.endswith("[full]") or a.endswith("-full]")]
        if named_full:
            return named_full[0]
        if algorithm in group:
            return algorithm
    return None


def _ablation(study: Study, final: pd.DataFrame, options: ReportOptions) -> tuple[pd.DataFrame | None, str]:
    full = _full_arm(final, options)
    if full is None:
        return None, ""
    algorithm = _arm_algorithms(final)[full]
    rows = []
    column = options.value_column
    for env, part in final.groupby("env", sort=True):
        arms = sorted(a for a in part["arm"].unique() if a != full and _arm_algorithms(part)[a] == algorithm)
        if full not in set(part["arm"]) or not arms:
            continue
        matrices = _env_matrices(part[part["arm"].isin([full, *arms])], column)
        y = matrices[full].mean(axis=1).to_numpy()
        for arm in arms:
            x = matrices[arm].mean(axis=1).to_numpy()
            row: dict[str, Any] = {"env": env, "arm": arm, "full": full, "n_x": len(x), "n_full": len(y)}
            if min(len(x), len(y)) < 2:
                row.update({"p_value": math.nan, "tost_p": math.nan})
                rows.append(row)
                continue
            res = _quiet(compare, x, y, test=options.test, seed=child_seed(options.seed, "ablation", env, arm),
                         confidence=options.confidence, alpha=options.alpha)
            eq = tost(x, y, margin=options.ablation.margin, alpha=options.alpha)
            row.update({"estimate": res.estimate, "low": res.low, "high": res.high, "p_value": res.p_value,
                        "effect_size": res.effect_size, "min_p_value": res.min_p_value, "tost_p": eq.p_value,
                        "tost_low": eq.low, "tost_high": eq.high, "equivalent": eq.equivalent})
            rows.append(row)
    if not rows:
        return None, ""
    frame = pd.DataFrame(rows)
    finite = frame["p_value"].apply(lambda p: math.isfinite(p))
    frame["p_adjusted"] = math.nan
    if finite.any():
        frame.loc[finite, "p_adjusted"] = adjust_pvalues(frame.loc[finite, "p_value"].to_numpy(dtype=float),
                                                         options.ablation.correction)
    verdicts = []
    for _, r in frame.iterrows():
        if not math.isfinite(r["p_value"]):
            verdicts.append("not tested (fewer than 2 seeds)")
        elif r["p_adjusted"] <= options.alpha:
            verdicts.append("lower than the full method" if r["estimate"] < 0 else "higher than the full method")
        elif bool(r.get("equivalent")):
            verdicts.append(f"no difference beyond +-{options.ablation.margin:g} (equivalent)")
        else:
            verdicts.append("inconclusive: neither a difference nor equivalence is shown")
    frame["verdict"] = verdicts
    text = (f"Each ablation cell of {algorithm} is compared with the full method {full!r} on per-seed final "
            f"{options.metric}: the difference (cell minus full) with its {round(100 * options.confidence)}% interval, "
            f"{TEST_NAMES[options.test]} with p-values corrected over the {int(finite.sum())} cell(s) by "
            f"{METHOD_NAMES[options.ablation.correction]}, and an equivalence test (TOST, two one-sided Welch tests, "
            f"margin +-{options.ablation.margin:g}) for 'this component makes no difference'. A cell is called "
            f"equivalent only when TOST's p is below {options.alpha:g}; a non-significant difference alone is not "
            "evidence of no effect.")
    return frame, text


# ----------------------------------------------------------------------------------------------
# skills and references
# ----------------------------------------------------------------------------------------------
SKILL_EVENTS = ("created", "validated", "promoted", "retired")


def _skill_summary(study: Study) -> pd.DataFrame | None:
    skills = study.skills
    if skills.empty or "event" not in skills.columns:
        return None
    rows = []
    internalization = _internalization_fraction(study)
    for (env, arm), part in skills.groupby(["env", "arm"], sort=True):
        n_runs = part["run"].nunique()
        row: dict[str, Any] = {"env": env, "arm": arm, "runs": n_runs}
        for event in SKILL_EVENTS:
            row[f"{event}_per_run"] = float((part["event"] == event).sum()) / n_runs
        if "gain" in part.columns:
            gains = part.loc[part["event"] == "validated", "gain"].astype(float)
            row["mean_validation_gain"] = float(gains.mean()) if len(gains) else math.nan
        row["internalization_token_fraction"] = internalization.get((env, arm), math.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def _internalization_fraction(study: Study) -> dict[tuple[str, str], float]:
    """Mean over iterations and runs of the metric ``siri/internalization_token_fraction`` (or any
    metric whose name mentions internali[sz]ation and a fraction/share)."""
    metrics = study.metrics
    if metrics.empty:
        return {}
    keys = [c for c in metrics.columns if "internali" in c and ("frac" in c or "share" in c)]
    if not keys:
        return {}
    key = "siri/internalization_token_fraction" if "siri/internalization_token_fraction" in keys else keys[0]
    per_run = metrics.groupby(["env", "arm", "run"])[key].mean()
    return per_run.groupby(level=[0, 1]).mean().to_dict()


def _reference_arm(summary: pd.DataFrame, method: str) -> str | None:
    """The measured arm a quoted method name stands for: the arm of that name, or the plain or
    'full' arm of the algorithm of that name."""
    arms = sorted(summary["arm"].unique())
    by_name = [a for a in arms if a.lower() == method.lower()]
    if by_name:
        return by_name[0]
    of_algorithm = sorted({a for a, alg in zip(summary["arm"], summary["algorithm"]) if str(alg).lower() == method.lower()})
    full = [a for a in of_algorithm if a.endswith("[full]")]
    if full:
        return full[0]
    return of_algorithm[0] if len(of_algorithm) == 1 else None


def _references(refs: ReferenceNumbers | None, summary: pd.DataFrame) -> pd.DataFrame | None:
    if refs is None:
        return None
    rows = []
    for env, metric, method, value in refs.rows:
        row = {"env": env, "metric": metric, "method": method, "quoted": value, "quoted_model": refs.model}
        arm = _reference_arm(summary, method) if not summary.empty else None
        measured = summary[(summary["env"].str.split(":").str[0] == env) & (summary["metric"] == metric)
                           & (summary["arm"] == arm)] if arm else summary.iloc[0:0]
        if len(measured):
            m = measured.iloc[0]
            row.update({"arm": arm, "measured": m["point"], "measured_low": m["low"], "measured_high": m["high"],
                        "measured_seeds": int(m["n_seeds"])})
        rows.append(row)
    return pd.DataFrame(rows)


def score_matrix_for(study: Study, env: str, arm: str, value: str = "won") -> pd.DataFrame:
    """The final runs x tasks matrix of one arm (for the results browser)."""
    final = study.final()
    part = final[(final["env"] == env) & (final["arm"] == arm)]
    return score_matrix(part, value=value, name=f"{arm} on {env}")

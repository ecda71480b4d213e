"""``siri-bench report``: write report.md, report.html, report.tex, results.csv and plots.

:func:`write_report` reads a runs folder (:mod:`reports.runs`), computes every table
(:mod:`reports.analysis`), draws the figures (:mod:`reports.plots`) and renders one document
(:mod:`reports.document`) to the three formats. Options come from the runs' ``report:`` config
section, overridden by the ``options`` given here (the CLI flags).
"""

from __future__ import annotations

import importlib.metadata
import logging
import math
import platform
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from reports import plots
from reports.analysis import Analysis, analyse
from reports.document import (
    BulletList,
    Cell,
    Code,
    Figure,
    Paragraph,
    Section,
    Table,
    to_html,
    to_latex,
    to_markdown,
)
from reports.options import ReportOptions
from reports.runs import Study, flatten, load_study
from reports.stats import interval_method
from reports.stats.comparisons import TEST_NAMES
from reports.stats.corrections import METHOD_NAMES
from siri_bench.store import atomic_write_text

log = logging.getLogger(__name__)

SECTION_IDS = ("overview", "warnings", "results", "aggregates", "significance", "improvement", "task-types",
               "curves", "profiles", "status", "trials", "cost", "ablation", "skills", "references", "per-seed", "checklist",
               "configs")
REPORT_PACKAGES = ("numpy", "scipy", "pandas", "matplotlib", "seaborn", "pyarrow", "siri-bench")


def write_report(runs_dir: str | Path, out: str | Path | None = None, options: dict[str, Any] | None = None,
                 allow_mismatch: bool = False, include_unfinished: bool = False) -> Path:
    """Write the report of ``runs_dir`` into ``out`` (default ``RUNS_DIR/report``); returns ``out``."""
    runs_dir = Path(runs_dir)
    study = load_study(runs_dir, include_unfinished=include_unfinished, allow_mismatch=allow_mismatch)
    merged = _deep_merge(_config_report_options(study), {k: v for k, v in (options or {}).items() if v is not None})
    opts = ReportOptions.parse(merged)
    result = analyse(study, opts)
    out = Path(out) if out is not None else runs_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    figures = _draw(result, out) if opts.plots else {}
    title = opts.title or f"siri-bench report: {runs_dir.resolve().name}"
    sections = build_sections(study, result, figures)
    atomic_write_text(out / "report.md", to_markdown(title, sections))
    atomic_write_text(out / "report.html", to_html(title, sections))
    atomic_write_text(out / "report.tex", to_latex(title, sections))
    _write_csvs(result, out)
    log.info("report written to %s", out)
    return out


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _config_report_options(study: Study) -> dict[str, Any]:
    """The ``report:`` section of the runs' configs (the first non-empty one)."""
    for record in study.runs:
        section = record.config.get("report") or {}
        if section:
            return dict(section)
    return {}


# ----------------------------------------------------------------------------------------------
# formatting
# ----------------------------------------------------------------------------------------------
def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fmt_p(p: Any) -> str:
    if p is None or not isinstance(p, (int, float)) or not math.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def interval_text(point: float, low: float, high: float, digits: int = 3) -> str:
    if not math.isfinite(low) or not math.isfinite(high):
        return f"{fmt(point, digits)} (no interval)"
    return f"{fmt(point, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


# ----------------------------------------------------------------------------------------------
# figures and CSV files
# ----------------------------------------------------------------------------------------------
def _draw(a: Analysis, out: Path) -> dict[str, Path]:
    folder = out / "plots"
    metric = a.options.metric
    drawn = {
        "final": plots.final_points(a.summary, folder / "final_points", metric),
        "curves": plots.learning_curves(a.curves, a.curve_bands, folder / "learning_curves", metric),
        "task_types": plots.task_type_heatmap(a.task_types, folder / "task_types", metric),
        "profiles": plots.performance_profiles(a.profiles, folder / "performance_profiles", metric),
        "poi": plots.improvement_matrix(a.poi, folder / "probability_of_improvement"),
        "status": plots.status_rates(a.status, folder / "status_rates"),
        "ablation": plots.ablation_chart(a.ablation, folder / "ablation", a.options.ablation.margin, metric,
                                          a.options.alpha),
        "skills": plots.skill_bank(a.skills, folder / "skill_bank"),
    }
    return {k: v.relative_to(out) for k, v in drawn.items() if v is not None}


def results_frame(a: Analysis) -> pd.DataFrame:
    """results.csv: one row per env, arm and metric (final performance, aggregates, cost)."""
    rows = []
    for _, r in a.summary.iterrows():
        rows.append({"env": r["env"], "arm": r["arm"], "algorithm": r["algorithm"], "metric": r["metric"],
                     "n_seeds": r["n_seeds"], "seeds": " ".join(map(str, r["seeds"])), "point": r["point"],
                     "low": r["low"], "high": r["high"], "confidence": a.options.confidence, "interval": r["method"]})
    for _, r in a.aggregates.iterrows():
        rows.append({"env": r["env"], "arm": r["arm"], "metric": f"{a.options.metric}_{r['metric']}_over_"
                     f"{a.aggregate_unit[r['env']].replace(' ', '_')}s", "n_seeds": r["n_seeds"], "point": r["point"],
                     "low": r["low"], "high": r["high"], "confidence": a.options.confidence, "interval": r["method"]})
    for _, r in a.pass_k.iterrows():
        rows.append({"env": r["env"], "arm": r["arm"], "metric": r["kind"].replace("k", str(r["k"])),
                     "n_seeds": r["n_seeds"], "point": r["point"], "low": r["low"], "high": r["high"],
                     "confidence": a.options.confidence, "interval": "Student-t interval on per-seed values"})
    for _, r in a.trials.iterrows():
        rows.append({"env": r["env"], "arm": r["arm"], "metric": f"success_within_{r['trial']}_trials",
                     "n_seeds": r["n_seeds"], "point": r["point"], "low": r["low"], "high": r["high"],
                     "confidence": a.options.confidence, "interval": "Student-t interval on per-seed values"})
    for _, r in a.cost.iterrows():
        for key in ("train_hours_per_seed", "prompt_tokens_per_step", "tokens_per_episode", "tokens_per_task",
                    "seconds_per_episode"):
            rows.append({"env": r["env"], "arm": r["arm"], "metric": key, "n_seeds": r["n_seeds"], "point": r[key]})
    return pd.DataFrame(rows)


def _write_csvs(a: Analysis, out: Path) -> None:
    atomic_write_text(out / "results.csv", results_frame(a).to_csv(index=False))
    extras = {"comparisons.csv": a.comparisons, "per_seed.csv": a.per_seed, "status.csv": a.status,
              "ablation.csv": a.ablation, "task_types.csv": a.task_types}
    for name, frame in extras.items():
        if frame is not None and not frame.empty:
            atomic_write_text(out / name, frame.drop(columns=["seeds"], errors="ignore").to_csv(index=False))


# ----------------------------------------------------------------------------------------------
# sections
# ----------------------------------------------------------------------------------------------
def build_sections(study: Study, a: Analysis, figures: dict[str, Path]) -> list[Section]:
    """Every section of the report, in order (sections without content are left out)."""
    builders = [_overview, _warnings, _results, _aggregates, _significance, _improvement, _task_types, _curves,
                _profiles, _status, _trials, _cost, _ablation, _skills, _references, _per_seed, _checklist, _configs]
    sections = []
    for build in builders:
        section = build(study, a, figures)
        if section is not None:
            sections.append(section)
    return sections


def _figure(figures: dict[str, Path], key: str, caption: str) -> list[Figure]:
    return [Figure(str(figures[key]), caption)] if key in figures else []


def _overview(study: Study, a: Analysis, figures: dict[str, Path]) -> Section:
    s = Section("overview", "Overview")
    final = a.summary[a.summary["metric"] == a.options.metric]
    envs = sorted(final["env"].unique())
    s.add(Paragraph(f"{len(study.runs)} run(s) of {final['arm'].nunique()} arm(s) on {len(envs)} environment(s) "
                    f"({', '.join(envs)}) from {study.root}. The headline metric is final evaluation {a.options.metric} "
                    f"({'the share of episodes won' if a.options.metric == 'success' else 'the mean episode score'}) "
                    "of each run's last evaluation round; the unit of replication is the training seed (one run), so "
                    "every interval and test works on per-seed values."))
    items = []
    for env in envs:
        part = final[final["env"] == env].sort_values("point", ascending=False)
        best = part.iloc[0]
        items.append(f"{env}: highest mean {a.options.metric} {interval_text(best['point'], best['low'], best['high'])} "
                     f"by {best['arm']} over {best['n_seeds']} seed(s).")
    if not a.comparisons.empty and "significant" in a.comparisons.columns:
        n_sig = int(a.comparisons["significant"].sum())
        items.append(f"{n_sig} of {len(a.comparisons)} comparison(s) are significant after "
                     f"{a.options.correction.capitalize() if a.options.correction not in ('bh', 'by') else a.options.correction.upper()} "
                     f"correction at alpha {a.options.alpha:g} (see Significance tests).")
    s.add(BulletList(items))
    return s


def _warnings(study: Study, a: Analysis, figures: dict[str, Path]) -> Section:
    s = Section("warnings", "Read this first")
    items = list(study.notes)
    if study.mismatches:
        items += [f"Compared despite a fingerprint mismatch (--allow-mismatch): {m}" for m in study.mismatches]
    items += a.notes + a.memory_notes
    single = a.summary[(a.summary["metric"] == a.options.metric) & (a.summary["n_seeds"] < 2)]
    for _, r in single.iterrows():
        items.append(f"{r['arm']} on {r['env']} has one seed: no interval and no test is possible.")
    few = a.summary[(a.summary["metric"] == a.options.metric) & (a.summary["n_seeds"].between(2, 5))]
    if len(few):
        items.append(f"{few['arm'].nunique()} arm(s) have 2-5 seeds: intervals are t-based on per-seed values (not "
                     "percentile bootstrap, which under-covers at so few seeds), and they are wide.")
    if not a.comparisons.empty and "alpha_reachable" in a.comparisons.columns:
        unreachable = a.comparisons[a.comparisons["alpha_reachable"] == False]  # noqa: E712
        for _, r in unreachable.iterrows():
            items.append(f"{r['arm']} vs {r['baseline']} on {r['env']}: with {r['n_x']} vs {r['n_y']} seeds this test "
                         f"cannot reach p below {fmt_p(r['min_p_value'])}, so alpha {a.options.alpha:g} is unreachable.")
    s.add(BulletList(items or ["No warnings: every run finished, fingerprints agree and every arm has enough seeds "
                               "for the tests used."]))
    return s


def _marks(a: Analysis) -> dict[tuple[str, str], str]:
    marks = {}
    if not a.comparisons.empty and "significant" in a.comparisons.columns and a.options.baseline:
        for _, r in a.comparisons.iterrows():
            if r["significant"]:
                marks[(r["env"], r["arm"])] = "†"
    return marks


def _results(study: Study, a: Analysis, figures: dict[str, Path]) -> Section:
    s = Section("results", "Main results")
    marks = _marks(a)
    baseline_arms = set(a.comparisons["baseline"]) if a.options.baseline and not a.comparisons.empty else set()
    for metric in ("success", "score"):
        data = a.summary[a.summary["metric"] == metric]
        if data.empty:
            continue
        envs = sorted(data["env"].unique())
        arms = sorted(data["arm"].unique())
        rows = []
        best = {env: data[data["env"] == env]["point"].max() for env in envs}
        for arm in arms:
            row: list[Cell | str] = [arm + (" (baseline)" if arm in baseline_arms else "")]
            for env in envs:
                r = data[(data["env"] == env) & (data["arm"] == arm)]
                if r.empty:
                    row += ["", ""]
                    continue
                r = r.iloc[0]
                row.append(Cell(interval_text(r["point"], r["low"], r["high"]), bold=r["point"] == best[env],
                                mark=marks.get((env, arm), "") if metric == a.options.metric else ""))
                row.append(str(r["n_seeds"]))
            rows.append(row)
        columns = ["arm"] + [c for env in envs for c in (f"{env} {metric}", "seeds")]
        caption = (f"Final {metric}: mean over seeds [{round(100 * a.options.confidence)}% confidence interval of that "
                   f"mean; {interval_method('mean', a.options.interval_mode, a.options.reps)}]. Bold: the highest "
                   "mean per environment.")
        if metric == a.options.metric and a.options.baseline:
            caption += (f" †: differs from the baseline after {a.options.correction} correction "
                        f"(adjusted p <= {a.options.alpha:g}).")
        s.add(Table(columns, rows, caption))
    for block in _figure(figures, "final", "Final performance per arm: mean over seeds with its interval."):
        s.add(block)
    return s


def _aggregates(study: Study, a: Analysis, figures: dict[str, Path]) -> Section | None:
    if a.aggregates.empty:
        return None
    s = Section("aggregates", "Aggregate metrics")
    units = ", ".join(f"{env}: {unit}s" for env, unit in sorted(a.aggregate_unit.items()))
    s.add(Paragraph(f"rliable's aggregates of {a.options.metric} over tasks ({units}): mean, median of per-task means, "
                    "interquartile mean (IQM) of all (seed, task) scores, and optimality gap (1 minus the mean of "
                    "scores capped at 1; lower is better). Intervals: "
                    + "; ".join(sorted({f"{m}: {interval_method(m, a.options.interval_mode, a.options.reps)}"
                                        for m in a.aggregates["metric"].unique()})) + "."))
    metrics = list(dict.fromkeys(a.aggregates["metric"]))
    rows = []
    for (env, arm), part in a.aggregates.groupby(["env", "arm"], sort=True):
        by_metric = part.set_index("metric")
        rows.append([env, arm, str(part["n_seeds"].iloc[0])]
                    + [interval_text(by_metric.loc[m, "point"], by_metric.loc[m, "low"], by_metric.loc[m, "high"])
                       if m in by_metric.index else "–" for m in metrics])
    s.add(Table(["env", "arm", "seeds"] + [m.replace("_", " ") for m in metrics], rows))
    if not a.pass_k.empty:
        s.add(Paragraph("Tasks were tried several times: pass@k (at least one of k trials succeeds; Chen et al. 2021) "
                        "and pass^k (all k trials succeed; tau-bench), unbiased estimators per task averaged over tasks, "
                        "t-interval over seeds."))
        s.add(Table(["env", "arm", "metric", "trials per task", "value [CI]"],
                    [[r["env"], r["arm"], r["kind"].replace("k", str(r["k"])), str(r["trials"]),
                      interval_text(r["point"], r["low"], r["high"])] for _, r in a.pass_k.iterrows()]))
    return s


def _significance(study: Study, a: Analysis, figures: dict[str, Path]) -> Section:
    s = Section("significance", "Significance tests")
    s.add(Paragraph(a.comparison_family))
    if a.comparisons.empty:
        return s
    rows = []
    for _, r in a.comparisons.iterrows():
        tested = isinstance(r.get("p_value"), float) and math.isfinite(r["p_value"])
        if not tested:
            rows.append([r["env"], r["arm"], r["baseline"], f"{r['n_x']} vs {r['n_y']}", "not tested", "–", "–", "–",
                         "–", "–"])
            continue
        effect = (f"{r['effect_name']} {interval_text(r['effect_size'], r['effect_low'], r['effect_high'], 2)}"
                  if math.isfinite(r["effect_size"]) else f"{r['effect_name']} –")
        rows.append([r["env"], r["arm"], r["baseline"], f"{r['n_x']} vs {r['n_y']}",
                     interval_text(r["estimate"], r["low"], r["high"]), fmt_p(r["p_value"]), fmt_p(r["p_adjusted"]),
                     effect, fmt_p(r["min_p_value"]) if r["min_p_value"] > 0 else "0 (continuous)", Cell("yes" if r["significant"] else "no", bold=r["significant"])])
    s.add(Table(["env", "arm", "vs", "seeds", "difference [CI]", "p", f"{a.options.correction} p", "effect size [CI]",
                 "smallest attainable p", "significant"], rows))
    s.add(Paragraph("In words:"))
    s.add(BulletList(list(a.comparisons["text"])))
    return s


def _improvement(study: Study, a: Analysis, figures: dict[str, Path]) -> Section | None:
    if not a.poi:
        return None
    s = Section("improvement", "Probability of improvement")
    s.add(Paragraph("P(X > Y): the probability that a run of X scores higher than a run of Y on a randomly chosen task "
                    "(ties count one half), averaged over tasks, as rliable defines it; intervals are percentile "
                    f"bootstrap intervals with {a.options.poi_reps} resamples "
                    + ("of whole seeds." if a.options.interval_mode == "seed" else "(stratified, rliable).")
                    + " Values near 0.5 mean neither arm tends to beat the other."))
    rows = [[env, x, y, interval_text(r["point"], r["low"], r["high"])]
            for env, mat in sorted(a.poi.items()) for (x, y), r in sorted(mat.items()) if x < y]
    s.add(Table(["env", "X", "Y", "P(X > Y) [CI]"], rows))
    for block in _figure(figures, "poi", "Probability that the row arm improves on the column arm."):
        s.add(block)
    return s


def _task_types(study: Study, a: Analysis, figures: dict[str, Path]) -> Section | None:
    if a.task_types.empty:
        return None
    s = Section("task-types", "Per task type")
    rows = [[r["env"], r["arm"], r["task_type"], str(r["episodes"]), interval_text(r["point"], r["low"], r["high"])]
            for _, r in a.task_types.iterrows()]
    s.add(Table(["env", "arm", "task type", "episodes", f"{a.options.metric} [CI over seeds]"], rows))
    for block in _figure(figures, "task_types", f"Final {a.options.metric} per task type (mean over seeds)."):
        s.add(block)
    return s


def _curves(study: Study, a: Analysis, figures: dict[str, Path]) -> Section:
    s = Section("curves", "Learning curves")
    rounds = a.curves.groupby(["env", "arm"])["iteration"].nunique()
    s.add(Paragraph(f"Evaluation {a.options.metric} at every evaluation round on the fixed evaluation tasks: thin lines "
                    "are single seeds, thick lines the mean over seeds with its t-interval (a run keeps its identity "
                    f"across rounds). Rounds per arm: {', '.join(f'{arm} ({env}): {n}' for (env, arm), n in rounds.items())}."))
    for block in _figure(figures, "curves", "Learning curves with per-seed traces and interval bands."):
        s.add(block)
    return s


def _profiles(study: Study, a: Analysis, figures: dict[str, Path]) -> Section | None:
    if "profiles" not in figures:
        return None
    s = Section("profiles", "Performance profiles")
    s.add(Paragraph("Score distributions (rliable): the fraction of (seed, task) scores above each threshold tau, "
                    "with percentile bootstrap bands. A curve that lies above another everywhere dominates it."))
    for block in _figure(figures, "profiles", "Performance profiles."):
        s.add(block)
    return s


def _status(study: Study, a: Analysis, figures: dict[str, Path]) -> Section | None:
    if a.status.empty:
        return None
    s = Section("status", "Episode outcomes (failure taxonomy)")
    s.add(Paragraph("How final evaluation episodes ended: each episode has exactly one status (success only for a "
                    "real win; an episode truncated at the step limit is never a success). Rates carry Wilson "
                    "intervals whose sample size is shrunk by the design effect of clustering by run, so episodes "
                    "of one seed do not count as independent."))
    statuses = list(dict.fromkeys(a.status["status"]))
    rows = []
    for (env, arm), part in a.status.groupby(["env", "arm"], sort=True):
        by = part.set_index("status")
        rows.append([env, arm, str(int(part["episodes"].iloc[0]))]
                    + [interval_text(by.loc[st, "rate"], by.loc[st, "low"], by.loc[st, "high"], 2) for st in statuses])
    s.add(Table(["env", "arm", "episodes"] + statuses, rows))
    for block in _figure(figures, "status", "Status rates per arm with intervals."):
        s.add(block)
    return s


def _cost(study: Study, a: Analysis, figures: dict[str, Path]) -> Section:
    s = Section("cost", "Cost beside success")
    s.add(Paragraph("Success means little without its price: training wall time per seed (from each run's "
                    "time/iteration_s metrics, in hours on the device named) and inference cost over every "
                    "episode of the last evaluation round, averaged over seeds: prompt tokens per step (what a "
                    "skill bank, memory or reflection adds to every prompt), tokens per episode (prompt plus "
                    "completion), tokens per task (all trials of a task plus the tokens a writer model spent on "
                    "reflections or memories) and wall time per episode."))
    m = a.options.metric
    rows = [[r["env"], r["arm"], str(r["n_seeds"]), fmt(r[m]), fmt(r["train_hours_per_seed"], 2),
             fmt(r["train_hours_total"], 2), r["device"], fmt(r["prompt_tokens_per_step"], 0),
             fmt(r["tokens_per_episode"], 0), fmt(r["completion_tokens_per_episode"], 0),
             fmt(r["tokens_per_task"], 0), fmt(r["steps_per_episode"], 1),
             fmt(r["seconds_per_episode"], 2)] for _, r in a.cost.iterrows()]
    s.add(Table(["env", "arm", "seeds", m, "train h / seed", "train h total", "device", "prompt tokens / step",
                 "tokens / episode", "completion tokens / episode", "tokens / task", "steps / episode",
                 "s / episode"], rows))
    return s


def _trials(study: Study, a: Analysis, figures: dict[str, Path]) -> Section | None:
    if a.trials.empty:
        return None
    s = Section("trials", "Success per trial")
    s.add(Paragraph("Arms that retry a failed task (Reflexion) play it again up to their trial limit, with what "
                    "they learned from the failure in the prompt. Success within k trials is the share of tasks "
                    "solved at trial k or earlier (mean over seeds, t-interval over seeds); the main results count "
                    "each task once, after its last trial."))
    trials = sorted(a.trials["trial"].unique())
    rows = []
    for (env, arm), part in a.trials.groupby(["env", "arm"], sort=True):
        by_k = part.set_index("trial")
        rows.append([env, arm, str(part["n_seeds"].iloc[0]), str(part["tasks"].iloc[0])]
                    + [interval_text(by_k.loc[k, "point"], by_k.loc[k, "low"], by_k.loc[k, "high"])
                       if k in by_k.index else "–" for k in trials])
    s.add(Table(["env", "arm", "seeds", "tasks"] + [f"within {k} trial{'s' if k > 1 else ''}" for k in trials], rows))
    return s


def _ablation(study: Study, a: Analysis, figures: dict[str, Path]) -> Section | None:
    if a.ablation is None:
        return None
    s = Section("ablation", "Ablation")
    s.add(Paragraph(a.ablation_text))
    rows = []
    for _, r in a.ablation.iterrows():
        tested = math.isfinite(r["p_value"])
        rows.append([r["env"], r["arm"], f"{r['n_x']} vs {r['n_full']}",
                     interval_text(r["estimate"], r["low"], r["high"]) if tested else "not tested",
                     fmt_p(r["p_value"]), fmt_p(r["p_adjusted"]), fmt_p(r.get("tost_p", math.nan)),
                     Cell(r["verdict"], bold=tested and r["p_adjusted"] <= a.options.alpha)])
    s.add(Table(["env", "cell", "seeds", f"change vs {a.ablation['full'].iloc[0]} [CI]", "p",
                 f"{a.options.ablation.correction.upper()} p", "TOST p", "verdict"], rows))
    for block in _figure(figures, "ablation", "Change of each ablation cell vs the full method, with the "
                                              "equivalence margin shaded."):
        s.add(block)
    return s


def _skills(study: Study, a: Analysis, figures: dict[str, Path]) -> Section | None:
    if a.skill_summary is None:
        return None
    s = Section("skills", "SIRI skill bank")
    s.add(Paragraph("From each run's skills.jsonl: skills created, validated (paired gain), promoted and retired per "
                    "run, and the share of training tokens that came from internalization (metric "
                    "siri/internalization_token_fraction, mean over iterations)."))
    rows = [[r["env"], r["arm"], str(r["runs"]), fmt(r["created_per_run"], 1), fmt(r["validated_per_run"], 1),
             fmt(r["promoted_per_run"], 1), fmt(r["retired_per_run"], 1), fmt(r.get("mean_validation_gain", math.nan)),
             fmt(r["internalization_token_fraction"])] for _, r in a.skill_summary.iterrows()]
    s.add(Table(["env", "arm", "runs", "created / run", "validated / run", "promoted / run", "retired / run",
                 "mean paired gain", "internalization token share"], rows))
    for block in _figure(figures, "skills", "Skill bank: active skills per category, utility traces, lifecycle "
                                            "counts."):
        s.add(block)
    return s


def _references(study: Study, a: Analysis, figures: dict[str, Path]) -> Section | None:
    if a.references is None or a.reference_info is None:
        return None
    info = a.reference_info
    s = Section("references", "Reference numbers (quoted, not measured)")
    models = sorted({str((r.config.get("policy") or {}).get("model")) for r in study.runs})
    s.add(Paragraph(f"QUOTED, NOT MEASURED: numbers from {info.source} with {info.model} ({info.path.name}). "
                    f"{info.note} They are shown beside this report's measurements (model(s): {', '.join(models)}) "
                    "for orientation only: models, data, budgets and evaluation protocols differ, so no test "
                    "compares them."))
    rows = []
    for _, r in a.references.iterrows():
        measured = (f"{r['arm']}: " + interval_text(r["measured"], r["measured_low"], r["measured_high"])
                    + f" ({int(r['measured_seeds'])} seeds)"
                    if "measured" in r and isinstance(r.get("measured"), float) and math.isfinite(r["measured"])
                    else "not run here")
        rows.append([r["env"], r["metric"], r["method"], f"{r['quoted']:.3f} (quoted)", measured])
    s.add(Table(["env", "metric", "method", f"quoted, not measured ({info.model})", "measured here [CI]"], rows))
    return s


def _per_seed(study: Study, a: Analysis, figures: dict[str, Path]) -> Section:
    s = Section("per-seed", "Per-seed results")
    s.add(Paragraph("Every run's final evaluation, so nothing above hides a seed (no best-of-seeds, no dropped "
                    "seeds)."))
    cols = [c for c in ("success", "score") if c in a.per_seed.columns]
    rows = [[r["env"], r["arm"], str(r["seed"]), r["run"], str(r["iteration"]), str(r["episodes"])]
            + [fmt(r[c]) for c in cols] + [fmt(r["tokens_per_episode"], 0), fmt(r["train_hours"], 2),
                                           "yes" if r["done"] else "no"] for _, r in a.per_seed.iterrows()]
    s.add(Table(["env", "arm", "seed", "run", "final iteration", "episodes"] + cols
                + ["tokens / episode", "train h", "finished"], rows))
    return s


def _unique(values: list[Any]) -> str:
    shown = sorted({str(v) for v in values})
    return ", ".join(shown)


def _checklist(study: Study, a: Analysis, figures: dict[str, Path]) -> Section:
    s = Section("checklist", "Reporting checklist")
    final = study.final()
    items = []
    seeds = a.summary[a.summary["metric"] == a.options.metric]
    seed_lists = {(r["env"], r["arm"]): r["seeds"] for _, r in seeds.iterrows()}
    items.append("Seeds per arm: " + "; ".join(f"{arm} on {env}: {len(v)} ({', '.join(map(str, v))})"
                                               for (env, arm), v in sorted(seed_lists.items())) + ".")
    matched = len({tuple(v) for v in seed_lists.values()}) <= 1
    items.append(f"Seed lists {'are identical' if matched else 'differ'} across arms.")
    items.append("Checkpoint rule: each run's last evaluation round (largest iteration; final iterations: "
                 + _unique(final.groupby("run")["iteration"].max().tolist())
                 + "); no checkpoint is selected on the evaluation set.")
    for env, part in final.groupby("env", sort=True):
        per_run = part.groupby("run").size()
        tasks = part["task_id"].nunique() if "task_id" in part.columns else "?"
        splits = _unique(part["split"].dropna().tolist()) if "split" in part.columns else \
            _unique([r.split for r in study.runs if r.env == env])
        items.append(f"Evaluation set for {env}: split {splits}, {tasks} task(s), {_unique(per_run.tolist())} "
                     "episode(s) per seed.")
    configs = [r.config for r in study.runs]
    items.append("Sampling at evaluation: temperature "
                 + _unique([(c.get("eval") or {}).get("temperature") for c in configs])
                 + ", top_p " + _unique([(c.get("policy") or {}).get("top_p") for c in configs])
                 + ", max new tokens " + _unique([(c.get("eval") or {}).get("max_new_tokens")
                                                  or (c.get("policy") or {}).get("max_new_tokens") for c in configs])
                 + ", action mode " + _unique([(c.get("policy") or {}).get("action_mode") for c in configs])
                 + ", model " + _unique([(c.get("policy") or {}).get("model") for c in configs]) + ".")
    items.append(f"Intervals: {round(100 * a.options.confidence)}% confidence intervals; mean: "
                 f"{interval_method('mean', a.options.interval_mode, a.options.reps)}; median/IQM: "
                 f"{interval_method('iqm', a.options.interval_mode, a.options.reps)}; random draws from "
                 f"numpy SeedSequence({a.options.seed}).")
    items.append("What the brackets mean: [low, high] is a confidence interval of the mean over training seeds "
                 "(for success and score clipped to [0, 1]). It is not a standard deviation, not a standard error, "
                 "and not a range of seeds.")
    items.append(f"Tests: {TEST_NAMES[a.options.test]} on per-seed values{' (paired by seed)' if a.options.paired else ''}; "
                 f"headline family corrected with {METHOD_NAMES[a.options.correction]}; ablation family with "
                 f"{METHOD_NAMES[a.options.ablation.correction]}; alpha {a.options.alpha:g}.")
    items.append("Runs included: " + ", ".join(r.name for r in study.runs) + ".")
    items += a.memory_notes or ["No arm carries memory across episodes (or none recorded one)."]
    s.add(BulletList(items))
    return s


def _package_versions(study: Study) -> list[list[str]]:
    rows = []
    seen: dict[str, set[str]] = {}
    for r in study.runs:
        for pkg, version in ((r.fingerprint or {}).get("packages") or {}).items():
            seen.setdefault(str(pkg), set()).add(str(version))
    for pkg, versions in sorted(seen.items()):
        rows.append([pkg, ", ".join(sorted(versions)), "runs' fingerprints"])
    rows.append(["python (report)", platform.python_version(), "this report"])
    for pkg in REPORT_PACKAGES:
        try:
            rows.append([f"{pkg} (report)", importlib.metadata.version(pkg), "this report"])
        except importlib.metadata.PackageNotFoundError:
            rows.append([f"{pkg} (report)", "source checkout" if pkg == "siri-bench" else "not installed",
                         "this report"])
    return rows


def _configs(study: Study, a: Analysis, figures: dict[str, Path]) -> Section:
    s = Section("configs", "Configurations and package versions")
    s.add(Paragraph("The resolved config of each arm, exactly as saved in its first run folder; the runs of an arm "
                    "differ only in `seeds` unless listed below it."))
    for arm in sorted({r.arm for r in study.runs}):
        records = sorted((r for r in study.runs if r.arm == arm), key=lambda r: r.seed)
        first = records[0]
        text = yaml.safe_dump(first.config, sort_keys=False, allow_unicode=True)
        s.add(Code(text, "yaml", f"{arm} ({first.run})"))
        diffs = _config_differences(records)
        if diffs:
            s.add(BulletList([f"{arm}: {d}" for d in diffs]))
    s.add(Table(["package", "version(s)", "source"], _package_versions(study)))
    return s


def _config_differences(records: list) -> list[str]:
    flats = [flatten(r.config) for r in records]
    keys = sorted(set().union(*flats)) if flats else []
    diffs = []
    for key in keys:
        if key in ("seeds", "description") or key.startswith("report."):
            continue
        values = {str(f.get(key)) for f in flats}
        if len(values) > 1:
            diffs.append(f"{key} differs between its runs: {', '.join(sorted(values))}")
    return diffs

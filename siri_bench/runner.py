"""Wiring: experiment config -> runs -> run folders.

:func:`run_experiment` expands an experiment into runs (grid cells x variants x seeds), skips
runs that are DONE, and executes the others (locally, one after another, or through the grid
executor with a process pool or Ray). :func:`execute_run` executes one run in its folder:
it saves the resolved config, opens the run's log file and hands over to the training /
evaluation loop (:mod:`siri_bench.trainer`), which resumes from the last checkpoint when the
folder already holds one.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from siri_bench.config import ExperimentConfig, RunSpec, expand_runs
from siri_bench.errors import ConfigError, SiriBenchError
from siri_bench.logs import run_log_file
from siri_bench.store import RunDir

log = logging.getLogger(__name__)


def run_dir_for(spec: RunSpec) -> RunDir:
    return RunDir(Path(spec.config.output_dir) / spec.config.name / spec.name)


def execute_run(spec: RunSpec, *, restart: bool = False) -> RunDir:
    """Execute one run in its folder (resuming if it was interrupted); returns the folder.

    With ``train.processes > 1`` the run's trainer processes are started here (on this machine, or
    as Ray actors inside a ``--backend ray`` task); under an outside launcher (``accelerate launch``,
    ``torchrun``) this process is one of them (:mod:`siri_bench.distributed.launch`)."""
    from siri_bench.distributed.launch import execute_launched, launch_mode
    from siri_bench.distributed.parallel import check_strategy

    check_strategy(spec.config)
    mode = launch_mode(spec.config)
    if mode == "outside":
        return execute_launched(spec, lambda: _prepare_run_dir(spec, restart))
    run_dir = _prepare_run_dir(spec, restart)
    if run_dir is None:
        return run_dir_for(spec)
    with run_log_file(run_dir.log_path):
        log.info("run %s -> %s", spec.name, run_dir.path)
        if mode == "single":
            from siri_bench.trainer import run_training

            run_training(spec, run_dir)
        elif mode == "local":
            from siri_bench.distributed.launch import launch_local

            launch_local(spec, run_dir, spec.config.train.processes)
        else:
            from siri_bench.distributed.ray_launch import launch_on_ray

            launch_on_ray(spec, run_dir, spec.config.train.processes)
    return run_dir


def _prepare_run_dir(spec: RunSpec, restart: bool) -> RunDir | None:
    """The run's folder with its resolved config written (None: the run is already DONE)."""
    run_dir = run_dir_for(spec)
    if restart and run_dir.path.exists():
        shutil.rmtree(run_dir.path)
    if run_dir.is_done():
        log.info("%s: already DONE, skipped", spec.name)
        return None
    resolved = spec.config.to_dict()
    if run_dir.exists():
        previous = run_dir.read_config()
        if _strip_volatile(previous) != _strip_volatile(resolved):
            raise SiriBenchError(
                f"{run_dir.path} holds a run with a different config; use --restart to start it over or "
                "change output_dir/name"
            )
    run_dir.write_config(resolved)
    return run_dir


def _strip_volatile(cfg: dict) -> dict:
    """Config fields that may change between a run and its resumption (the scale of a run
    included: a checkpoint written by N processes resumes on M)."""
    from siri_bench.config import without_scale_keys

    cfg = without_scale_keys(cfg)
    cfg.pop("description", None)
    cfg.pop("report", None)
    return cfg


def run_experiment(cfg: ExperimentConfig, *, dry_run: bool = False, workers: int = 1, backend: str = "local",
                   restart: bool = False, write_report: bool = True) -> int:
    """Run every run of an experiment; returns the process exit status."""
    runs = expand_runs(cfg)
    if write_report and not dry_run:
        from reports.options import ReportOptions

        ReportOptions.parse(cfg.report)  # a bad `report:` section fails now, not after every run finished
    if dry_run:
        for spec in runs:
            status = run_dir_for(spec).status()
            print(f"{spec.name}\t{status}\t{run_dir_for(spec).path}")
        return 0
    from siri_bench.distributed.launch import is_main_launched_process, outside_world_size
    from siri_bench.grid import execute_runs

    if outside_world_size() > 1 and (workers > 1 or backend != "local"):
        raise ConfigError("under accelerate launch / torchrun every process executes the runs one after another: "
                          "use --workers 1 and --backend local (or drop the outside launcher and use --processes)")
    failures = execute_runs(runs, workers=workers, backend=backend, restart=restart)
    root = Path(cfg.output_dir) / cfg.name
    if write_report and root.exists() and is_main_launched_process():
        try:
            from reports.render import write_report as render

            out = render(root, options=cfg.report)
            log.info("report: %s", out)
        except SiriBenchError as exc:
            log.warning("no report written: %s", exc)
    if failures:
        log.error("%d of %d run(s) failed: %s", len(failures), len(runs), ", ".join(failures))
        return 1
    return 0

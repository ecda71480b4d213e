"""Executing many runs: one after another, on a local process pool, or on Ray.

Every run is independent (its own folder, its own seeds), so runs are the unit of parallelism:

* ``backend="local"``, ``workers=1``: in this process, one after another;
* ``backend="local"``, ``workers=N``: a pool of N worker processes (``spawn``, so no thread or
  CUDA state is inherited from this process);
* ``backend="ray"``: one Ray task per run on the cluster that ``ray.init`` finds (``RAY_ADDRESS``)
  or on a local one; ``workers`` > 1 caps the runs in flight, otherwise Ray schedules by
  resources (1 CPU per run, plus 1 GPU for runs whose policy is on CUDA or served by vLLM).

Runs already DONE are skipped before anything is scheduled (unless ``restart``); an interrupted
run is executed again and resumes from its last checkpoint (:func:`siri_bench.runner.execute_run`).
So a killed grid, started again, redoes no finished run. A run that fails is logged (its
traceback also goes to the run's ``log.txt``) and reported by name; the others go on. A user error
(:class:`~siri_bench.errors.SiriBenchError`, e.g. a missing model) stops the grid: runs not yet
started are cancelled and the error is raised once the running ones have finished.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from siri_bench.config import RunSpec
from siri_bench.errors import ConfigError, SiriBenchError

log = logging.getLogger(__name__)

RunFunction = Callable[..., object]
BACKENDS = ("local", "ray")


class RunFailed(Exception):
    """A run raised an unexpected exception (its traceback is in the run's log.txt)."""

    def __init__(self, name: str, summary: str):
        super().__init__(name, summary)
        self.name = name
        self.summary = summary

    def __str__(self) -> str:
        return f"run {self.name} failed: {self.summary}"


def _default_run_function(spec: RunSpec, *, restart: bool = False) -> object:
    from siri_bench.runner import execute_run

    return execute_run(spec, restart=restart)


def _ensure_worker_logging() -> None:
    """A fresh worker process logs INFO to stderr (and to each run's log.txt via the runner)."""
    if not logging.getLogger().handlers:  # a fresh process (pool or Ray worker); the CLI's own is set up
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _append_traceback(spec: RunSpec, text: str) -> None:
    try:
        from siri_bench.runner import run_dir_for

        path = run_dir_for(spec).log_path
        if path.parent.exists():
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(text)
    except Exception:  # best effort: the parent logs the summary anyway
        pass


def run_one(spec: RunSpec, restart: bool, run_fn: RunFunction | None = None) -> str:
    """Execute one run (in a worker); returns its name or raises RunFailed / SiriBenchError."""
    _ensure_worker_logging()
    fn = run_fn or _default_run_function
    try:
        fn(spec, restart=restart)
    except SiriBenchError:
        raise
    except BaseException as exc:  # KeyboardInterrupt in a worker included: the run did not finish
        _append_traceback(spec, traceback.format_exc())
        raise RunFailed(spec.name, f"{type(exc).__name__}: {exc}") from None
    return spec.name


class _Outcomes:
    """Bookkeeping of finished runs: failures by name, and the first user error (which stops the grid)."""

    def __init__(self, total: int):
        self.total = total
        self.done = 0
        self.failures: list[str] = []
        self.user_error: SiriBenchError | None = None

    def record(self, spec: RunSpec, exc: BaseException | None) -> None:
        self.done += 1
        if exc is None:
            log.info("[%d/%d] %s finished", self.done, self.total, spec.name)
        elif isinstance(exc, SiriBenchError):
            log.error("%s: %s", spec.name, exc)
            self.user_error = self.user_error or exc
        else:
            log.error("%s (traceback in its log.txt)", exc if isinstance(exc, RunFailed) else
                      f"run {spec.name} failed: {type(exc).__name__}: {exc}")
            self.failures.append(spec.name)

    def result(self) -> list[str]:
        if self.user_error is not None:
            raise self.user_error
        return self.failures


def pending_runs(runs: Sequence[RunSpec], restart: bool = False) -> list[RunSpec]:
    """The runs that still have to execute (all of them with ``restart``)."""
    from siri_bench.runner import run_dir_for

    todo = []
    for spec in runs:
        if not restart and run_dir_for(spec).is_done():
            log.info("%s: already DONE, skipped", spec.name)
        else:
            todo.append(spec)
    return todo


def execute_runs(runs: Sequence[RunSpec], *, workers: int = 1, backend: str = "local", restart: bool = False,
                 run_fn: RunFunction | None = None) -> list[str]:
    """Execute ``runs``; returns the names of the runs that failed.

    ``run_fn(spec, restart=...)`` executes one run (default :func:`siri_bench.runner.execute_run`);
    with a process pool or Ray it must be importable by name (a module-level function).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r} is unknown; use one of {', '.join(BACKENDS)}")
    if int(workers) != workers or workers < 1:
        raise ConfigError(f"--workers must be a positive integer, got {workers!r}")
    todo = pending_runs(runs, restart)
    if len(todo) < len(runs):
        log.info("%d of %d run(s) already DONE; %d to execute", len(runs) - len(todo), len(runs), len(todo))
    if not todo:
        return []
    if backend == "ray":
        return _execute_ray(todo, workers, restart, run_fn)
    if workers == 1 or len(todo) == 1:
        return _execute_sequential(todo, restart, run_fn)
    return _execute_pool(todo, workers, restart, run_fn)


def _execute_sequential(todo: Sequence[RunSpec], restart: bool, run_fn: RunFunction | None) -> list[str]:
    failures = []
    for i, spec in enumerate(todo, 1):
        log.info("[%d/%d] %s", i, len(todo), spec.name)
        try:
            run_one(spec, restart, run_fn)
        except RunFailed as exc:
            log.error("%s (traceback in its log.txt)", exc)
            failures.append(spec.name)
    return failures


def _execute_pool(todo: Sequence[RunSpec], workers: int, restart: bool, run_fn: RunFunction | None) -> list[str]:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    outcomes = _Outcomes(len(todo))
    size = min(workers, len(todo))
    log.info("executing %d run(s) on %d local worker process(es)", len(todo), size)
    executor = ProcessPoolExecutor(max_workers=size, mp_context=multiprocessing.get_context("spawn"))
    queue = list(todo)
    in_flight: dict[object, RunSpec] = {}
    try:
        # A sliding window of `size` submissions: after a user error no further run starts.
        while queue or in_flight:
            while queue and len(in_flight) < size and outcomes.user_error is None:
                spec = queue.pop(0)
                in_flight[executor.submit(run_one, spec, restart, run_fn)] = spec
            if not in_flight:
                break
            finished, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for future in finished:
                outcomes.record(in_flight.pop(future), future.exception())
    except KeyboardInterrupt:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return outcomes.result()


def _project_pythonpath() -> str:
    """PYTHONPATH for Ray workers: this checkout's root (siri_bench, envs, algorithms, reports)."""
    root = str(Path(__file__).resolve().parents[1])
    existing = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join(p for p in (root, existing) if p)


def _resources(spec: RunSpec) -> dict[str, float]:
    """The Ray resources of a run's task. A run with several trainer processes only coordinates
    them (its trainers are actors in a placement group of their own: siri_bench.distributed.ray_launch)."""
    if spec.config.train.processes > 1:
        return {"num_cpus": 0, "num_gpus": 0}
    policy = spec.config.policy
    gpu = policy.backend == "vllm" or str(policy.device).startswith("cuda")
    return {"num_cpus": 1, "num_gpus": 1 if gpu else 0}


def _execute_ray(todo: Sequence[RunSpec], workers: int, restart: bool, run_fn: RunFunction | None) -> list[str]:
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray: pip install 'siri-bench[ray]'") from None

    started_here = False
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        log.info("starting Ray (%s)", f"address {address}" if address else "a local cluster")
        ray.init(address=address, include_dashboard=False, ignore_reinit_error=True, log_to_driver=True)
        started_here = True
    from siri_bench.distributed.launch import PLACEMENT_ENV

    # PLACEMENT_ENV: trainer processes and env workers of the runs become Ray actors too
    runtime_env = {"env_vars": {"PYTHONPATH": _project_pythonpath(), PLACEMENT_ENV: "ray"}}
    remote = ray.remote(max_retries=0)(run_one)
    cap = workers if workers > 1 else len(todo)
    queue = list(todo)
    in_flight: dict[object, RunSpec] = {}
    outcomes = _Outcomes(len(todo))
    log.info("executing %d run(s) on Ray (at most %d at a time)", len(todo), cap)
    try:
        while queue or in_flight:
            while queue and len(in_flight) < cap and outcomes.user_error is None:
                spec = queue.pop(0)
                ref = remote.options(runtime_env=runtime_env, **_resources(spec)).remote(spec, restart, run_fn)
                in_flight[ref] = spec
            if not in_flight:
                break
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                spec = in_flight.pop(ref)
                try:
                    ray.get(ref)
                    outcomes.record(spec, None)
                except Exception as exc:  # ray.exceptions.RayTaskError wraps the run's exception
                    outcomes.record(spec, getattr(exc, "cause", None) or exc)
    except KeyboardInterrupt:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
    return outcomes.result()

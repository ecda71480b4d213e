"""Starting the trainer processes of a run.

:func:`launch_mode` decides how :func:`siri_bench.runner.execute_run` executes a run:

* ``single`` - ``train.processes == 1``: in this process, as always;
* ``local`` - ``siri-bench run CONFIG --processes N``: N processes on this machine, started with
  ``torch.multiprocessing`` (spawn); they join one process group through accelerate (gloo on CPU,
  NCCL on GPUs; process ``r`` uses GPU ``r``);
* ``ray`` - the run executes inside a Ray task of ``siri-bench run --backend ray``: its N trainer
  processes are Ray actors in a placement group (:mod:`siri_bench.distributed.ray_launch`);
* ``outside`` - the CLI itself was started by an outside launcher (``accelerate launch -m
  siri_bench run CONFIG`` or ``torchrun -m siri_bench run CONFIG``; ``WORLD_SIZE`` > 1): every
  process executes the run as one rank of that launcher's world.

In every mode the processes run :func:`siri_bench.trainer.run_training` with a
:class:`~siri_bench.distributed.DistContext`; process 0 writes the run folder and the run log. A user
error in any process (:class:`~siri_bench.errors.SiriBenchError`) is raised again in the launching
process with its own one-line message; any other failure stops every process and raises
:class:`TrainerProcessError` (tracebacks in the run's ``log.txt``). Trainer processes die with the
process that launched them (Linux ``PR_SET_PDEATHSIG``), so a killed run leaves nothing behind and
resumes from its last checkpoint when started again.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import socket
import sys
import tempfile
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

from siri_bench.distributed.context import DistContext
from siri_bench.errors import ConfigError, SiriBenchError

log = logging.getLogger(__name__)

#: Set in the environment of trainer processes started by siri-bench (not by an outside launcher).
WORKER_ENV = "SIRI_BENCH_TRAINER_RANK"
#: Set by ``siri-bench run --backend ray`` in its Ray tasks: place trainer processes on Ray.
PLACEMENT_ENV = "SIRI_BENCH_PLACEMENT"
#: ``module:function`` called first in every trainer process that siri-bench starts (tests use it to
#: install stand-ins or interruptions in processes they cannot reach otherwise).
SETUP_ENV = "SIRI_BENCH_PROCESS_SETUP"


class TrainerProcessError(RuntimeError):
    """A trainer process failed with an unexpected error (its traceback is in the run's log.txt)."""


# ----------------------------------------------------------------------------------------------
# Modes
# ----------------------------------------------------------------------------------------------
def outside_world_size() -> int:
    """The world size an outside launcher (torchrun, accelerate launch) gave this process (1: none)."""
    if os.environ.get(WORKER_ENV) is not None:
        return 1
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def placement() -> str:
    """Where this process places workers: ``ray`` inside ``--backend ray`` tasks, else ``local``."""
    return "ray" if os.environ.get(PLACEMENT_ENV) == "ray" else "local"


def launch_mode(config: Any) -> str:
    """``single``, ``local``, ``ray`` or ``outside`` (see the module docstring)."""
    if outside_world_size() > 1:
        return "outside"
    if config.train.processes <= 1:
        return "single"
    return "ray" if placement() == "ray" else "local"


def uses_gpu(config: Any) -> bool:
    """Whether the run's policy computes on GPUs (and its process group uses NCCL)."""
    device = str(config.policy.device)
    if device.startswith("cuda"):
        return True
    if device == "auto":                     # as siri_bench.policy.build_policy resolves it
        if config.policy.backend == "vllm":
            return True
        import torch

        return torch.cuda.is_available()
    return False


# ----------------------------------------------------------------------------------------------
# Joining the process group (in every trainer process)
# ----------------------------------------------------------------------------------------------
def init_distributed(config: Any, *, where: str = "local") -> DistContext:
    """This process's :class:`DistContext`: joins the process group that the environment describes
    (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) through accelerate."""
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    timeout = timedelta(seconds=float(config.resources.collective_timeout_s))
    if uses_gpu(config):
        import torch

        # process r computes on its node's GPU LOCAL_RANK: policy.device "cuda"/"auto" means the current one
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    accelerator = Accelerator(cpu=not uses_gpu(config), kwargs_handlers=[InitProcessGroupKwargs(timeout=timeout)])
    object_group = None
    import torch.distributed as tdist

    if tdist.is_initialized() and tdist.get_backend() != "gloo":
        object_group = tdist.new_group(backend="gloo", timeout=timeout)   # Python objects travel on CPU
    dist = DistContext(rank=accelerator.process_index, world_size=accelerator.num_processes,
                       local_rank=accelerator.local_process_index, strategy=config.train.strategy, placement=where,
                       accelerator=accelerator, object_group=object_group)
    if dist.world_size != config.train.processes:
        log.info("train.processes = %d, but this run has %d processes (from its launcher)", config.train.processes,
                 dist.world_size)
    return dist


def close_distributed() -> None:
    import torch.distributed as tdist

    if tdist.is_initialized():
        tdist.destroy_process_group()


def run_rank(spec: Any, run_dir: Any, dist: DistContext) -> None:
    """Run one rank of ``spec`` (process 0 logs into the run's log.txt, the others only warnings;
    a failure is logged there by the process it happened in)."""
    from siri_bench.logs import run_log_file
    from siri_bench.trainer import run_training

    if dist.is_main:
        with run_log_file(run_dir.log_path):
            _logged(lambda: run_training(spec, run_dir, dist=dist), dist.rank)
        return
    handler = logging.FileHandler(run_dir.log_path, encoding="utf-8")
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s [process {dist.rank}] %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        _logged(lambda: run_training(spec, run_dir, dist=dist), dist.rank)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def _logged(fn: Any, rank: int) -> None:
    """``fn()``; a failure is logged (while the run log is attached) and raised again."""
    try:
        fn()
    except BaseException as exc:
        _log_failure(rank, exc)
        exc._siri_bench_logged = True  # type: ignore[attr-defined]
        raise


def _log_failure(rank: int, exc: BaseException) -> None:
    if isinstance(exc, SiriBenchError):
        log.error("process %d: %s", rank, exc)
    else:
        log.error("process %d failed:\n%s", rank, "".join(traceback.format_exception(exc)))


def _report_failure(errors: Path | None, rank: int, exc: BaseException) -> None:
    """Log the failure (unless logged already) and leave it for the launching process."""
    if not getattr(exc, "_siri_bench_logged", False):
        _log_failure(rank, exc)
    if errors is None:
        return
    payload: dict[str, Any] = {"rank": rank, "type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, SiriBenchError):
        try:
            pickle.dumps(exc)
            payload["error"] = exc
        except Exception:  # noqa: BLE001 - an unpicklable error still travels as text
            pass
    (errors / f"rank{rank}.pkl").write_bytes(pickle.dumps(payload))


def raise_worker_failure(errors: Path, default: str) -> None:
    """Raise the first user error any process reported, else a :class:`TrainerProcessError`."""
    reports = []
    for path in sorted(errors.glob("rank*.pkl")):
        try:
            reports.append(pickle.loads(path.read_bytes()))
        except Exception:  # noqa: BLE001
            continue
    reports.sort(key=lambda r: r["rank"])
    for report in reports:
        if isinstance(report.get("error"), SiriBenchError):
            raise report["error"]
    if reports:
        first = reports[0]
        raise TrainerProcessError(f"trainer process {first['rank']} failed: {first['type']}: {first['message']} "
                                  "(traceback in the run's log.txt)")
    raise TrainerProcessError(default)


# ----------------------------------------------------------------------------------------------
# Local processes
# ----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent(parent_pid: int) -> None:
    """Make the kernel kill this process when its launching process dies (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))   # PR_SET_PDEATHSIG
        except OSError:
            pass
    if os.getppid() != parent_pid:            # the parent died before the line above
        os._exit(1)


def rank_environment(rank: int, world_size: int, local_rank: int, local_world_size: int, master_addr: str,
                     master_port: int, threads: int | None) -> dict[str, str]:
    """The environment variables of one trainer process (what torchrun would set)."""
    env = {"RANK": str(rank), "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(local_rank),
           "LOCAL_WORLD_SIZE": str(local_world_size), "MASTER_ADDR": master_addr, "MASTER_PORT": str(master_port),
           WORKER_ENV: str(rank)}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def _local_worker(rank: int, world_size: int, port: int, parent_pid: int, spec: Any, run_dir_path: str,
                  errors_path: str, quiet: bool, setup: str | None) -> None:
    """Entry point of one local trainer process (``torch.multiprocessing`` passes ``rank`` first)."""
    die_with_parent(parent_pid)
    threads = spec.config.policy.cpu_threads or 1
    os.environ.update(rank_environment(rank, world_size, rank, world_size, "127.0.0.1", port, threads))
    from siri_bench.logs import setup_logging
    from siri_bench.store import RunDir

    setup_logging(quiet=quiet or rank != 0)
    errors = Path(errors_path)
    try:
        setup = setup or os.environ.get(SETUP_ENV)
        if setup:
            _call_dotted(setup)
        dist = init_distributed(spec.config)
        try:
            run_rank(spec, RunDir(run_dir_path), dist)
        finally:
            close_distributed()
    except BaseException as exc:
        _report_failure(errors, rank, exc)
        raise


def _call_dotted(name: str) -> None:
    import importlib

    module, _, attr = name.partition(":")
    getattr(importlib.import_module(module), attr)()


def launch_local(spec: Any, run_dir: Any, processes: int, *, setup: str | None = None) -> None:
    """Execute ``spec`` with ``processes`` trainer processes on this machine (blocks until they end).

    ``setup`` (``"module:function"``) is called first in every process (tests use it to install
    stand-ins, e.g. a fake vLLM engine)."""
    import torch.multiprocessing as mp

    from siri_bench.logs import is_quiet

    if processes < 2:
        raise ConfigError(f"launch_local needs at least 2 processes, got {processes}")
    errors = Path(tempfile.mkdtemp(prefix="siri-bench-ranks-"))
    log.info("%s: %d trainer processes (%s, %s)", spec.name, processes, spec.config.train.strategy,
             "NCCL" if uses_gpu(spec.config) else "gloo")
    try:
        mp.start_processes(_local_worker, nprocs=processes, join=True, start_method="spawn",
                           args=(processes, free_port(), os.getpid(), spec, str(run_dir.path), str(errors),
                                 is_quiet(), setup))
    except (mp.ProcessRaisedException, mp.ProcessExitedException) as exc:
        raise_worker_failure(errors, f"a trainer process failed: {str(exc).splitlines()[0]}")
    finally:
        shutil.rmtree(errors, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# Under an outside launcher (accelerate launch, torchrun)
# ----------------------------------------------------------------------------------------------
_OUTSIDE: DistContext | None = None


def outside_context(config: Any) -> DistContext:
    """The process group of an outside launcher (joined once per process, shared by its runs)."""
    global _OUTSIDE
    if _OUTSIDE is None:
        _OUTSIDE = init_distributed(config)
    _OUTSIDE.strategy = config.train.strategy
    _OUTSIDE.engine = None
    return _OUTSIDE


def is_main_launched_process() -> bool:
    """False in the processes 1..N-1 of an outside launcher (they write nothing but their own log)."""
    return outside_world_size() <= 1 or os.environ.get("RANK", "0") == "0"


def execute_launched(spec: Any, prepare: Any) -> Any:
    """Execute ``spec`` as one rank of an outside launcher's world. ``prepare()`` (process 0 only)
    readies the run folder and returns it, or None when the run is already DONE."""
    from siri_bench.runner import run_dir_for

    dist = outside_context(spec.config)
    outcome: tuple[str, Any] = ("run", None)
    if dist.is_main:
        try:
            outcome = ("run", None) if prepare() is not None else ("done", None)
        except SiriBenchError as exc:
            outcome = ("error", str(exc))
            dist.broadcast(outcome)
            raise
    outcome = dist.broadcast(outcome)
    if outcome[0] == "error":
        raise SiriBenchError(f"process 0 could not prepare the run folder: {outcome[1]}")
    run_dir = run_dir_for(spec)
    if outcome[0] == "done":
        return run_dir
    run_rank(spec, run_dir, dist)
    return run_dir

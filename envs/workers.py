"""A pool of environment copies spread over worker processes, with per-call timeouts and restarts.

Text-game engines are slow, single-threaded and not thread-safe (TextWorld keeps C++ global
state per process), so :class:`EnvPool` runs ``num_envs`` copies of one registered env in
``workers`` subprocesses (``spawn`` start method; never threads) or Ray actors. Env ``i`` lives in
worker ``i % workers``, so the G copies of a rollout group are spread over all workers. A call
sends each worker its envs' requests at once; workers run in parallel, each going through its
envs in order and sending every result as soon as it is ready.

Health: every env operation has ``timeout_s`` seconds (a ``reset`` has ``reset_timeout_s``, default
``timeout_s``: engine resets load games and may need longer than steps; a ``call`` has the larger
of the two), counted from the worker's previous result. A worker that misses it (hung) or dies (crashed) is killed and restarted with fresh envs, and

* every env whose request was not answered gets a :class:`StepResult` with ``error`` set,
  ``terminated=True`` and ``info["status"] = "env_error"``: the episode is marked failed;
* every other env of that worker lost its episode too: its next ``step`` answers the same way
  without reaching the worker, until it is reset.

An exception inside an env's ``reset``/``step`` gives that env an ``env_error`` result and a fresh
env; the worker goes on.

Recycling: with ``recycle_after=N`` a worker process is restarted once it has served N resets, at
the first ``reset`` call where none of its envs is in the middle of an episode (so no episode is
lost). This bounds engines that leak memory per reset (the stock ALFWorld/TextWorld engine, see
``benchmarks/alfworld_memory.py``); it needs worker processes (``process`` or ``ray``). User errors (:class:`~siri_bench.errors.SiriBenchError`, e.g. an unknown
task id) and Gymnasium API misuse (``gymnasium.error.Error``) are raised in the caller instead.

Backends: ``inline`` (envs in this process, no timeouts: for tests and debugging), ``process``
(the default for real work) and ``ray`` (the same workers as Ray actors; needs the ``[ray]``
extra).
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import time
import traceback
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from siri_bench.errors import ConfigError, SiriBenchError

log = logging.getLogger(__name__)

Backend = Literal["inline", "process", "ray"]
#: (env index, seed, options) of one reset.
ResetRequest = tuple[int, int | None, dict[str, Any] | None]
#: (env index, operation, payload): operation is "reset" (payload (seed, options)), "step" (the
#: action) or "call" (payload (attribute name, args, kwargs)).
Op = tuple[int, str, Any]

ENV_ERROR = "env_error"
START_TIMEOUT_S = 180.0


@dataclass
class StepResult:
    """What one env returned for one reset or step (``error`` is set when the env failed)."""

    observation: str
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def env_error_result(message: str) -> StepResult:
    """The result of an env that crashed, hung or lost its worker: a failed, finished episode."""
    return StepResult("", 0.0, True, False, {"status": ENV_ERROR, "error": message}, message)


@dataclass
class _Failure:
    """An exception raised inside a worker, carried back to the pool."""

    message: str
    exception: BaseException | None  # set for caller errors, which are re-raised


# ----------------------------------------------------------------------------------------------
# The worker side (runs in a subprocess, a Ray actor, or inline)
# ----------------------------------------------------------------------------------------------
def make_env(env_id: str, env_kwargs: Mapping[str, Any]) -> Any:
    """``gymnasium.make`` after loading siri-bench's env registry (built-ins and entry points)."""
    import gymnasium

    from siri_bench.registry import ENVS

    ENVS.load()
    return gymnasium.make(env_id, **dict(env_kwargs))


def _is_caller_error(exc: BaseException) -> bool:
    import gymnasium

    return isinstance(exc, (SiriBenchError, gymnasium.error.Error))


def _picklable(exc: BaseException) -> BaseException | None:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return None


class WorkerCore:
    """The envs of one worker and how one operation runs on one of them."""

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any], indices: Sequence[int]) -> None:
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs)
        self.envs: dict[int, Any] = {i: make_env(env_id, self.env_kwargs) for i in indices}

    def run(self, op: Op) -> StepResult | _Failure | Any:
        index, kind, payload = op
        env = self.envs.get(index)
        try:
            if env is None:
                env = self.envs[index] = make_env(self.env_id, self.env_kwargs)
            if kind == "reset":
                seed, options = payload
                observation, info = env.reset(seed=seed, options=options)
                return StepResult(observation, 0.0, False, False, info)
            if kind == "step":
                observation, reward, terminated, truncated, info = env.step(payload)
                return StepResult(observation, float(reward), bool(terminated), bool(truncated), info)
            if kind == "call":
                name, args, kwargs = payload
                value = getattr(env.unwrapped, name)
                return value(*args, **kwargs) if callable(value) else value
            raise ValueError(f"unknown env operation {kind!r}")
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            if _is_caller_error(exc):
                return _Failure(message, _picklable(exc) or RuntimeError(message))
            log.warning("env %d raised during %s: %s", index, kind, traceback.format_exc())
            self._replace(index)
            return _Failure(message, None)

    def _replace(self, index: int) -> None:
        """Drop an env that raised (its state is unknown); the next operation makes a fresh one."""
        env = self.envs.get(index)
        self.envs[index] = None
        try:
            if env is not None:
                env.close()
        except Exception:
            pass

    def close(self) -> None:
        for index in list(self.envs):
            self._replace(index)


def _process_worker_main(conn: multiprocessing.connection.Connection, env_id: str, env_kwargs: dict[str, Any],
                         indices: list[int]) -> None:
    """Subprocess loop: build the envs, then answer ``("ops", [...])`` one result message per op."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        core = WorkerCore(env_id, env_kwargs, indices)
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
        conn.send(("fatal", f"{type(exc).__name__}: {exc}", _picklable(exc)))
        return
    conn.send(("ready", None, None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message[0] == "close":
            core.close()
            break
        for op in message[1]:
            conn.send(("result", op[0], core.run(op)))


# ----------------------------------------------------------------------------------------------
# Backends: how a worker is started, sent operations, waited for and killed
# ----------------------------------------------------------------------------------------------
def _expire_hung(pending: dict[int, Any], deadline: dict[int, float], failed: dict[int, str],
                 timeout_s: float) -> float | None:
    """Move workers past their deadline from ``pending`` to ``failed``; the seconds to wait for the
    next result, or None when no worker is pending any more."""
    now = time.monotonic()
    for w in [w for w in pending if deadline[w] <= now]:
        failed[w] = f"env worker {w} timed out after {timeout_s:g} s (hung engine)"
        pending.pop(w)
    if not pending:
        return None
    return max(0.0, min(deadline[w] for w in pending) - now)


class _ProcessWorker:
    def __init__(self, ctx: Any, env_id: str, env_kwargs: dict[str, Any], indices: list[int]) -> None:
        self.ctx, self.env_id, self.env_kwargs, self.indices = ctx, env_id, env_kwargs, indices
        self.process: Any = None
        self.conn: Any = None

    def start(self) -> None:
        parent, child = self.ctx.Pipe(duplex=True)
        self.process = self.ctx.Process(target=_process_worker_main, args=(child, self.env_id, self.env_kwargs,
                                                                           self.indices), daemon=True)
        self.process.start()
        child.close()
        self.conn = parent

    def wait_ready(self, timeout_s: float) -> None:
        if not self.conn.poll(timeout_s):
            self.kill()
            raise RuntimeError(f"env worker did not start within {timeout_s:.0f} s")
        try:
            kind, message, exc = self.conn.recv()
        except EOFError:
            code = self.process.exitcode
            self.kill()
            raise RuntimeError(f"env worker died while starting (exit code {code})") from None
        if kind == "fatal":
            self.kill()
            if isinstance(exc, SiriBenchError):
                raise exc
            raise RuntimeError(f"env worker could not make {self.env_id!r}: {message}")

    def send(self, ops: list[Op]) -> None:
        self.conn.send(("ops", ops))

    def kill(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()
        if self.process is not None:
            self.process.join(10)
        if self.conn is not None:
            self.conn.close()

    def close(self, timeout_s: float = 10.0) -> None:
        if self.process is None:
            return
        try:
            if self.process.is_alive():
                self.conn.send(("close",))
                self.process.join(timeout_s)
        except (OSError, BrokenPipeError):
            pass
        self.kill()
        self.process = None


class _ProcessBackend:
    """Workers as ``spawn``-ed subprocesses; results read from pipes as they arrive."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], assignment: list[list[int]]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.workers = [_ProcessWorker(ctx, env_id, env_kwargs, indices) for indices in assignment]
        for worker in self.workers:
            worker.start()
        try:
            for worker in self.workers:
                worker.wait_ready(START_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        pids = [w.process.pid for w in self.workers]
        self._finalizer = weakref.finalize(self, _kill_pids, pids)

    def run(self, ops_by_worker: dict[int, list[Op]], timeout_s: float) -> tuple[dict[int, Any], dict[int, str]]:
        """Results by env index, and the failed workers with the reason."""
        results: dict[int, Any] = {}
        pending: dict[int, set[int]] = {}
        deadline: dict[int, float] = {}
        failed: dict[int, str] = {}
        for w, ops in ops_by_worker.items():
            try:
                self.workers[w].send(ops)
            except (OSError, BrokenPipeError):
                failed[w] = f"env worker {w} had died (exit code {self.workers[w].process.exitcode})"
                continue
            pending[w] = {op[0] for op in ops}
            deadline[w] = time.monotonic() + timeout_s
        by_conn = {self.workers[w].conn: w for w in pending}
        while (wait_s := _expire_hung(pending, deadline, failed, timeout_s)) is not None:
            conns = [self.workers[w].conn for w in pending]
            for conn in multiprocessing.connection.wait(conns, timeout=wait_s):
                w = by_conn[conn]
                try:
                    _, index, value = conn.recv()
                except (EOFError, OSError):
                    self.workers[w].process.join(1)
                    failed[w] = f"env worker {w} crashed (exit code {self.workers[w].process.exitcode})"
                    pending.pop(w)
                    continue
                results[index] = value
                pending[w].discard(index)
                deadline[w] = time.monotonic() + timeout_s
                if not pending[w]:
                    pending.pop(w)
        return results, failed

    def restart(self, w: int) -> None:
        worker = self.workers[w]
        worker.kill()
        worker.start()
        worker.wait_ready(START_TIMEOUT_S)
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _kill_pids, [x.process.pid for x in self.workers])

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        if hasattr(self, "_finalizer"):
            self._finalizer.detach()


def _kill_pids(pids: list[int]) -> None:
    """Last resort when a pool is garbage-collected unclosed: kill its worker processes."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


class _InlineBackend:
    """Envs in this process, run one after another; no timeouts (a hang hangs the caller)."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], assignment: list[list[int]]) -> None:
        self.cores = [WorkerCore(env_id, env_kwargs, indices) for indices in assignment]

    def run(self, ops_by_worker: dict[int, list[Op]], timeout_s: float) -> tuple[dict[int, Any], dict[int, str]]:
        return {op[0]: self.cores[w].run(op) for w, ops in ops_by_worker.items() for op in ops}, {}

    def restart(self, w: int) -> None:  # pragma: no cover - inline workers never fail as a whole
        raise AssertionError("inline workers are not restarted")

    def close(self) -> None:
        for core in self.cores:
            core.close()


class _RayBackend:
    """The same workers as Ray actors (one actor per worker)."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], assignment: list[list[int]],
                 actor_options: Mapping[str, Any] | None = None) -> None:
        try:
            self.ray = importlib.import_module("ray")
        except ModuleNotFoundError:
            raise ConfigError("worker backend 'ray' needs Ray: install the [ray] extra "
                              "(pip install 'siri-bench[ray]') or use the 'process' backend") from None
        if not self.ray.is_initialized():
            self.ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
        self.actor_class = self.ray.remote(**{"num_cpus": 1, **dict(actor_options or {})})(WorkerCore)
        self.env_id, self.env_kwargs, self.assignment = env_id, env_kwargs, assignment
        self.actors = [self._start(indices) for indices in assignment]

    def _start(self, indices: list[int]) -> Any:
        actor = self.actor_class.remote(self.env_id, self.env_kwargs, indices)
        try:
            # Envs are made in the actor's constructor: a no-op call waits for it (and surfaces errors).
            self.ray.get(actor.__ray_ready__.remote(), timeout=START_TIMEOUT_S)
        except Exception as exc:
            self.ray.kill(actor)
            cause = getattr(exc, "cause", None)
            if isinstance(cause, SiriBenchError):
                raise cause from None
            raise RuntimeError(f"env worker actor could not make {self.env_id!r}: {exc}") from None
        return actor

    def run(self, ops_by_worker: dict[int, list[Op]], timeout_s: float) -> tuple[dict[int, Any], dict[int, str]]:
        ray = self.ray
        results: dict[int, Any] = {}
        failed: dict[int, str] = {}
        ref_info: dict[Any, tuple[int, int]] = {}
        pending: dict[int, list[Any]] = {}
        deadline: dict[int, float] = {}
        for w, ops in ops_by_worker.items():
            # An actor runs its calls in submission order, so each op's result arrives as it is done.
            refs = [self.actors[w].run.remote(op) for op in ops]
            ref_info.update({ref: (w, op[0]) for ref, op in zip(refs, ops)})
            pending[w] = refs
            deadline[w] = time.monotonic() + timeout_s
        while (wait_s := _expire_hung(pending, deadline, failed, timeout_s)) is not None:
            refs = [ref for w_refs in pending.values() for ref in w_refs]
            done, _ = ray.wait(refs, num_returns=1, timeout=wait_s)
            for ref in done:
                w, index = ref_info[ref]
                if w not in pending:
                    continue
                try:
                    results[index] = ray.get(ref)
                except Exception as exc:  # RayActorError: the actor died
                    failed[w] = f"env worker {w} crashed ({type(exc).__name__})"
                    pending.pop(w)
                    continue
                pending[w].remove(ref)
                deadline[w] = time.monotonic() + timeout_s
                if not pending[w]:
                    pending.pop(w)
        return results, failed

    def restart(self, w: int) -> None:
        self.ray.kill(self.actors[w], no_restart=True)
        self.actors[w] = self._start(self.assignment[w])

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.get(actor.close.remote(), timeout=30)
            except Exception:
                pass
            self.ray.kill(actor, no_restart=True)
        self.actors = []


# ----------------------------------------------------------------------------------------------
# The pool
# ----------------------------------------------------------------------------------------------
class EnvPool:
    """``num_envs`` copies of ``env_id`` over ``workers`` workers (see the module docstring).

    ``reset`` and ``step`` take requests for any subset of env indices and return a
    :class:`StepResult` per requested index. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any] | None = None, num_envs: int = 1,
                 workers: int = 1, backend: Backend = "inline", timeout_s: float = 120.0,
                 ray_actor_options: Mapping[str, Any] | None = None, recycle_after: int | None = None,
                 reset_timeout_s: float | None = None) -> None:
        if num_envs < 1 or workers < 1:
            raise ConfigError(f"EnvPool needs num_envs >= 1 and workers >= 1 (got {num_envs}, {workers})")
        if timeout_s <= 0 or (reset_timeout_s is not None and reset_timeout_s <= 0):
            raise ConfigError(f"EnvPool timeouts must be > 0 (got timeout_s={timeout_s}, "
                              f"reset_timeout_s={reset_timeout_s})")
        if recycle_after is not None and recycle_after < 1:
            raise ConfigError(f"EnvPool recycle_after must be >= 1 or None (got {recycle_after})")
        if recycle_after is not None and backend == "inline":
            log.warning("env worker recycling (recycle_after=%d) needs worker processes; the inline pool "
                        "keeps its envs", recycle_after)
            recycle_after = None
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.num_envs = num_envs
        self.workers = min(workers, num_envs)
        self.backend = backend
        #: Per-call timeouts (seconds) of step and reset (see the module docstring).
        self.timeout_s = timeout_s
        self.reset_timeout_s = timeout_s if reset_timeout_s is None else reset_timeout_s
        #: Env indices held by each worker (env i is in worker i % workers).
        self.assignment = [list(range(w, num_envs, self.workers)) for w in range(self.workers)]
        #: Envs whose worker was restarted mid-episode: index -> why (cleared by a reset).
        self.lost: dict[int, str] = {}
        #: How many times each worker was restarted after a failure.
        self.restarts = [0] * self.workers
        #: Recycling (see the module docstring): resets served since each worker started, envs in
        #: an episode, and how many times each worker was recycled.
        self.recycle_after = recycle_after
        self.served = [0] * self.workers
        self.in_episode: set[int] = set()
        self.recycles = [0] * self.workers
        self._closed = False
        if backend == "inline":
            self._backend: Any = _InlineBackend(env_id, self.env_kwargs, self.assignment)
        elif backend == "process":
            self._backend = _ProcessBackend(env_id, self.env_kwargs, self.assignment)
        elif backend == "ray":
            self._backend = _RayBackend(env_id, self.env_kwargs, self.assignment, ray_actor_options)
        else:
            raise ConfigError(f"unknown env worker backend {backend!r}; use 'inline', 'process' or 'ray'")

    def worker_of(self, index: int) -> int:
        return index % self.workers

    # -- operations -----------------------------------------------------------------------
    def reset(self, requests: Sequence[ResetRequest]) -> dict[int, StepResult]:
        """Reset envs: ``[(index, seed, options), ...]`` -> {index: result}."""
        ops = [(self._check_index(i), "reset", (seed, options)) for i, seed, options in requests]
        self._recycle_idle_workers({op[0] for op in ops})
        results = self._run(ops, self.reset_timeout_s)
        for i, _, _ in requests:
            self.served[self.worker_of(i)] += 1
            if results[i].error is None:
                self.lost.pop(i, None)
                self.in_episode.add(i)
            else:
                self.in_episode.discard(i)
        return results

    def step(self, actions: Mapping[int, str]) -> dict[int, StepResult]:
        """Step envs: ``{index: action}`` -> {index: result}. Envs that lost their worker fail at once."""
        out = {i: env_error_result(self.lost[i]) for i in actions if i in self.lost}
        ops = [(self._check_index(i), "step", a) for i, a in actions.items() if i not in self.lost]
        out.update(self._run(ops, self.timeout_s))
        for i, result in out.items():
            if result.terminated or result.truncated or result.error is not None:
                self.in_episode.discard(i)
        return out

    def call(self, name: str, indices: Sequence[int] | None = None, *args: Any, **kwargs: Any) -> dict[int, Any]:
        """``env.unwrapped.<name>(*args, **kwargs)`` (or the attribute's value) on each env."""
        chosen = list(range(self.num_envs)) if indices is None else list(indices)
        ops = [(self._check_index(i), "call", (name, args, kwargs)) for i in chosen]
        results, failures = self._dispatch(ops, max(self.timeout_s, self.reset_timeout_s))
        for i, failure in failures.items():
            raise RuntimeError(f"env {i}: {name} failed: {failure.message}")
        return results

    # -- internals ------------------------------------------------------------------------
    def _recycle_idle_workers(self, resetting: set[int]) -> None:
        """Restart each worker that served ``recycle_after`` resets and has no episode in progress
        outside ``resetting`` (the envs about to start a new one)."""
        if self.recycle_after is None:
            return
        for w in range(self.workers):
            busy = [i for i in self.assignment[w] if i in self.in_episode and i not in resetting]
            if self.served[w] >= self.recycle_after and not busy:
                log.info("recycling env worker %d after %d resets (recycle_after=%d)", w, self.served[w],
                         self.recycle_after)
                self._backend.restart(w)
                self.served[w] = 0
                self.recycles[w] += 1
                for i in self.assignment[w]:
                    self.lost.pop(i, None)
                    self.in_episode.discard(i)

    def _check_index(self, index: int) -> int:
        if self._closed:
            raise RuntimeError("the EnvPool is closed")
        if not 0 <= index < self.num_envs:
            raise IndexError(f"env index {index} out of range (pool of {self.num_envs})")
        return index

    def _run(self, ops: list[Op], timeout_s: float) -> dict[int, StepResult]:
        results, failures = self._dispatch(ops, timeout_s)
        for i, failure in failures.items():
            results[i] = env_error_result(failure.message)
        return results

    def _dispatch(self, ops: list[Op], timeout_s: float) -> tuple[dict[int, Any], dict[int, _Failure]]:
        """Run ops with a per-op ``timeout_s``; returns values and failures by env index. Caller
        errors are raised here."""
        if len({op[0] for op in ops}) != len(ops):
            raise ValueError("each env index may appear once per call")
        by_worker: dict[int, list[Op]] = {}
        for op in ops:
            by_worker.setdefault(self.worker_of(op[0]), []).append(op)
        raw, failed_workers = self._backend.run(by_worker, timeout_s)
        failures: dict[int, _Failure] = {}
        for w, reason in failed_workers.items():
            log.warning("%s; restarting it (envs %s)", reason, self.assignment[w])
            # Every env of this call on that worker fails, even one answered before the failure:
            # its state died with the process. The worker's other envs fail at their next step.
            involved = {op[0] for op in by_worker.get(w, [])}
            for i in involved:
                raw.pop(i, None)
                failures[i] = _Failure(reason, None)
            for i in self.assignment[w]:
                if i not in involved:
                    self.lost[i] = f"{reason}; the episode was lost with the worker (reset the env)"
            self._backend.restart(w)
            self.restarts[w] += 1
            self.served[w] = 0
        values: dict[int, Any] = {}
        caller_error: BaseException | None = None
        for i, value in raw.items():
            if isinstance(value, _Failure):
                if value.exception is not None:
                    caller_error = caller_error or value.exception
                failures[i] = value
            else:
                values[i] = value
        if caller_error is not None:
            raise caller_error
        return values, failures

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._backend.close()

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The trainer processes of a run as Ray actors (``siri-bench run CONFIG --backend ray``).

``siri-bench run --backend ray`` executes every run as a Ray task (:mod:`siri_bench.grid`); a run
with ``train.processes = N > 1`` then asks Ray for a placement group of N bundles (each
``resources.trainer_cpus`` CPUs and ``resources.trainer_gpus`` GPUs; strategy
``resources.placement_strategy``) and starts one :class:`TrainerActor` per bundle. Rank 0's actor
names the address and a free port of its node; every actor joins the torch.distributed process
group there (through accelerate, as :mod:`siri_bench.distributed.launch` does for local processes)
and runs the same training loop. Inside the actors, environment workers are Ray actors too
(``resources.env_worker_cpus`` CPUs each, placed anywhere on the cluster), so envs scale with the
cluster's CPUs and trainers with its GPUs.

Ray only places processes: the collectives are torch.distributed's (gloo on CPU, NCCL on GPUs). The
first failure of any actor stops all of them (the others would wait in a collective); a user error
(:class:`~siri_bench.errors.SiriBenchError`) is raised again here with its own message.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from siri_bench.distributed.launch import (
    PLACEMENT_ENV,
    TrainerProcessError,
    close_distributed,
    free_port,
    init_distributed,
    rank_environment,
    run_rank,
    uses_gpu,
)
from siri_bench.errors import ConfigError, SiriBenchError

log = logging.getLogger(__name__)

#: How long to wait for the placement group's resources before saying the cluster is too small.
PLACEMENT_TIMEOUT_S = 600.0


class TrainerActor:
    """One trainer process of a run, as a Ray actor."""

    def __init__(self, rank: int):
        self.rank = rank

    def address(self) -> tuple[str, int]:
        """This node's address and a free port on it (rank 0 hosts the process group's store)."""
        import ray

        return ray.util.get_node_ip_address(), free_port()

    def run(self, spec: Any, run_dir_path: str, world_size: int, master_addr: str, master_port: int) -> None:
        import ray

        from siri_bench.logs import setup_logging
        from siri_bench.store import RunDir

        gpus = ray.get_gpu_ids()
        # Ray gives each actor its own GPU(s) through CUDA_VISIBLE_DEVICES: the first visible is its own.
        threads = spec.config.policy.cpu_threads or 1
        os.environ.update(rank_environment(self.rank, world_size, 0, 1, master_addr, master_port, threads))
        os.environ[PLACEMENT_ENV] = "ray"
        setup_logging(quiet=self.rank != 0)
        log.info("trainer process %d/%d on %s (GPUs %s)", self.rank, world_size, master_addr if self.rank == 0
                 else ray.util.get_node_ip_address(), gpus or "none")
        dist = init_distributed(spec.config, where="ray")
        try:
            run_rank(spec, RunDir(run_dir_path), dist)
        finally:
            close_distributed()


def trainer_bundles(config: Any, processes: int) -> list[dict[str, float]]:
    """The placement group's bundles: one per trainer process."""
    res = config.resources
    gpus = res.trainer_gpus if res.trainer_gpus is not None else (1.0 if uses_gpu(config) else 0.0)
    bundle: dict[str, float] = {"CPU": float(res.trainer_cpus)}
    if gpus:
        bundle["GPU"] = float(gpus)
    return [dict(bundle) for _ in range(processes)]


def launch_on_ray(spec: Any, run_dir: Any, processes: int) -> None:
    """Execute ``spec`` with ``processes`` trainer actors (blocks until they end; see the module docstring)."""
    try:
        import ray
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
    except ImportError:
        raise ConfigError("--backend ray needs Ray: pip install 'siri-bench[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, ignore_reinit_error=True)
    cfg = spec.config
    bundles = trainer_bundles(cfg, processes)
    group = placement_group(bundles, strategy=cfg.resources.placement_strategy)
    try:
        ray.get(group.ready(), timeout=PLACEMENT_TIMEOUT_S)
    except Exception:
        remove_placement_group(group)
        raise ConfigError(f"the Ray cluster did not offer {processes} bundles of {bundles[0]} within "
                          f"{PLACEMENT_TIMEOUT_S:.0f}s (resources: {ray.cluster_resources()}); add nodes or lower "
                          "train.processes / resources.trainer_cpus / resources.trainer_gpus") from None
    remote = ray.remote(max_restarts=0)(TrainerActor)
    actors = []
    for rank, bundle in enumerate(bundles):
        strategy = PlacementGroupSchedulingStrategy(placement_group=group, placement_group_bundle_index=rank)
        actors.append(remote.options(num_cpus=bundle["CPU"], num_gpus=bundle.get("GPU", 0),
                                     scheduling_strategy=strategy).remote(rank))
    log.info("%s: %d trainer actors on Ray (%s, %s)", spec.name, processes, cfg.train.strategy,
             "NCCL" if uses_gpu(cfg) else "gloo")
    try:
        addr, port = ray.get(actors[0].address.remote())
        pending = {a.run.remote(spec, str(run_dir.path), processes, addr, port): rank
                   for rank, a in enumerate(actors)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                rank = pending.pop(ref)
                try:
                    ray.get(ref)
                except Exception as exc:      # RayTaskError wraps the actor's exception
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, SiriBenchError):
                        raise cause from None
                    raise TrainerProcessError(f"trainer process {rank} failed: "
                                              f"{type(cause or exc).__name__}: {cause or exc}".splitlines()[0]
                                              + " (traceback in the run's log.txt)") from None
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        time.sleep(0.1)
        remove_placement_group(group)

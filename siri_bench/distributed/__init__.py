"""Scale-out: one trainer in any number of processes, on one machine or a Ray cluster.

The same training loop (:func:`siri_bench.trainer.train`) runs in 1..N processes; everything that
differs between one process and many lives here, behind :class:`DistContext` (a single-process
context is a no-op), so the loop reads the same at every scale:

* :mod:`.context` - which process this is and the few collectives the loop needs (accelerate's
  process group: gloo on CPU, NCCL on GPUs), per-process seeds, metric reductions;
* :mod:`.rollout` - rollouts split over the processes by whole groups, gathered in spec order;
* :mod:`.parallel` - the update's model wrapping: DistributedDataParallel (``train.strategy: ddp``,
  through accelerate) or FSDP2 full sharding (``fsdp``, torch ``fully_shard``), gradient sync with
  accumulation, checkpoints consolidated to the single-process format;
* :mod:`.launch` - ``siri-bench run --processes N`` (N local processes), or an outside launcher
  (``accelerate launch`` / ``torchrun``);
* :mod:`.ray_launch` - the trainer processes as Ray actors in a placement group (``--backend ray``).
"""

from siri_bench.distributed.context import SINGLE_PROCESS, DistContext, assign_groups

__all__ = ["SINGLE_PROCESS", "DistContext", "assign_groups"]

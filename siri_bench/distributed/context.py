"""Which trainer process this is, and the collectives the training loop needs.

A run with ``train.processes = N`` executes the training loop in N processes that form one
torch.distributed process group (set up by ``accelerate``: gloo on CPU, NCCL on GPUs, plus a gloo
group for Python objects). The loop's division of labour:

* **rollout**: the iteration's episodes are split by whole groups (:func:`assign_groups`; a group's G
  copies, and so GiGPO's step groups, never straddle processes); each process plays its share and
  the finished episodes are gathered on every process in spec order;
* **advantages**: every process computes the step table and the advantages of *all* episodes (cheap
  and deterministic), so estimators see whole groups, and batch-wide ones work too;
* **update**: the mini-batches are the single-process ones (same seeded permutation of all rows);
  process ``r`` computes the loss of the rows ``i`` with ``i % N == r``, with the mini-batch's global
  loss-unit count as denominator, so the summed gradient is the single-process one (a token-mean over
  all processes' tokens, not a mean of means); metrics are reduced as sums and counts;
* **process 0** writes the run folder (metrics, episodes, transcripts, checkpoints) and runs the
  evaluation; the others wait at the next collective.

Per-process random streams: every episode samples with seeds derived from the run seed and its
position (group, member, step; :mod:`siri_bench.seeding`), independent of the process that plays
it; the global torch/numpy/python generators of process ``r`` are seeded with
:meth:`DistContext.process_seed`, so a run is reproducible for a fixed process count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def assign_groups(specs: Sequence[Any], world_size: int) -> list[int]:
    """The process of each episode spec: whole groups (``group_id``), in order of first appearance,
    each to the process with the fewest episodes so far (ties: the lowest rank). Deterministic."""
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    sizes: dict[str, int] = {}
    for s in specs:
        sizes[s.group_id] = sizes.get(s.group_id, 0) + 1
    load = [0] * world_size
    owner: dict[str, int] = {}
    for group, size in sizes.items():
        rank = min(range(world_size), key=lambda r: (load[r], r))
        owner[group] = rank
        load[rank] += size
    return [owner[s.group_id] for s in specs]


def process_seed(run_seed: int, rank: int) -> int:
    """The seed of process ``rank``'s global generators: the run seed on process 0 (so a
    one-process run is seeded exactly as before), a derived 63-bit seed on the others."""
    if rank == 0:
        return int(run_seed)
    state = np.random.SeedSequence(entropy=int(run_seed), spawn_key=(0xD157, int(rank))).generate_state(2, np.uint32)
    return int((int(state[0]) << 32 | int(state[1])) & ((1 << 63) - 1))


@dataclass
class DistContext:
    """One trainer process of a run (``world_size == 1``: a no-op context, see :data:`SINGLE_PROCESS`).

    ``engine`` is the update's parallel engine (:mod:`siri_bench.distributed.parallel`), set by
    :meth:`prepare`; ``placement`` says where env workers go (``local``: processes of this machine,
    ``ray``: Ray actors); ``comm_s`` accumulates the seconds spent in collectives (waiting for the
    other processes included) until :meth:`take_comm_seconds`.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    strategy: str = "ddp"
    placement: str = "local"
    accelerator: Any = None
    object_group: Any = None
    engine: Any = None
    comm_s: float = 0.0

    # -- identity ---------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def process_seed(self, run_seed: int) -> int:
        return process_seed(run_seed, self.rank)

    def owns(self, row: int) -> bool:
        """Whether this process computes the loss of step row ``row`` (rows are dealt round-robin)."""
        return int(row) % self.world_size == self.rank

    def share(self, n: int) -> int:
        """This process's share of ``n`` things split evenly (at least 1)."""
        return max(1, -(-int(n) // self.world_size))

    def local_specs(self, specs: Sequence[Any]) -> list[Any]:
        """The episode specs this process plays (whole groups; :func:`assign_groups`)."""
        if not self.enabled:
            return list(specs)
        owners = assign_groups(specs, self.world_size)
        return [s for s, r in zip(specs, owners) if r == self.rank]

    # -- collectives (no-ops in one process) --------------------------------------------------
    @contextmanager
    def _timed(self) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.comm_s += time.monotonic() - t0

    def take_comm_seconds(self) -> float:
        """Seconds spent in collectives since the last call."""
        seconds, self.comm_s = self.comm_s, 0.0
        return seconds

    def gather(self, obj: Any) -> list[Any]:
        """``obj`` of every process, by rank, on every process."""
        if not self.enabled:
            return [obj]
        import torch.distributed as tdist

        out: list[Any] = [None] * self.world_size
        with self._timed():
            tdist.all_gather_object(out, obj, group=self.object_group)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Process 0's ``obj`` on every process."""
        if not self.enabled:
            return obj
        import torch.distributed as tdist

        box = [obj if self.is_main else None]
        with self._timed():
            tdist.broadcast_object_list(box, src=0, group=self.object_group)
        return box[0]

    def _all_reduce(self, values: Sequence[float], op: str) -> list[float]:
        import torch
        import torch.distributed as tdist

        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64)
        reduce_op = {"sum": tdist.ReduceOp.SUM, "max": tdist.ReduceOp.MAX}[op]
        with self._timed():
            tdist.all_reduce(tensor, op=reduce_op, group=self.object_group)
        return [float(v) for v in tensor.tolist()]

    def sum(self, values: Mapping[str, float]) -> dict[str, float]:
        """Element-wise sums over the processes of a name -> number mapping. Every process must pass
        the same names (missing ones count 0 when given as defaults by the caller)."""
        if not self.enabled:
            return dict(values)
        names = sorted(values)
        return dict(zip(names, self._all_reduce([values[n] for n in names], "sum")))

    def max(self, value: float) -> float:
        return value if not self.enabled else self._all_reduce([value], "max")[0]

    def any(self, flag: bool) -> bool:
        return bool(flag) if not self.enabled else self._all_reduce([1.0 if flag else 0.0], "max")[0] > 0

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as tdist

            with self._timed():
                tdist.barrier(group=self.object_group)

    def union_names(self, names: Sequence[str]) -> list[str]:
        """The sorted union of every process's ``names`` (for reducing mappings with uneven keys)."""
        if not self.enabled:
            return sorted(set(names))
        return sorted({n for part in self.gather(sorted(set(names))) for n in part})

    # -- main-process work ----------------------------------------------------------------------
    def on_main(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on process 0 only (None elsewhere), with the weights gathered where the strategy
        shards them (FSDP with the hf back end generates with whole weights)."""
        with self.inference_weights():
            return fn() if self.is_main else None

    def sync_algorithm(self, algorithm: Any) -> None:
        """Give every process process 0's algorithm state (after work only process 0 did, such as an
        evaluation round whose episodes the algorithm saw)."""
        if not self.enabled:
            return
        state = self.broadcast(algorithm.state_dict() if self.is_main else None)
        if not self.is_main:
            algorithm.load_state_dict(state)

    # -- the update's parallel engine -------------------------------------------------------------
    def prepare(self, policy: Any, reference: Any, optimizer: Any, *, algorithm: Any = None, config: Any = None) -> None:
        """Wrap (DDP) or shard (FSDP) the policy for the update; after any checkpoint was loaded into
        the plain model and optimizer (a checkpoint is always in the single-process format)."""
        if not self.enabled:
            return
        from siri_bench.distributed.parallel import make_engine

        self.engine = make_engine(self, policy, reference, optimizer, algorithm=algorithm, config=config)

    def inference_weights(self) -> Any:
        """A context in which the policy generates locally (FSDP + hf: whole weights on every process)."""
        return self.engine.inference_weights() if self.engine is not None else nullcontext()

    def micro_batch_count(self, local: int) -> int:
        return self.engine.micro_batch_count(local) if self.engine is not None else local

    def pad_micro_batch(self, policy: Any) -> None:
        self.engine.pad_micro_batch(policy)

    def pad_forwards(self, model_like: Any, local_chunks: int) -> None:
        if self.engine is not None:
            self.engine.pad_forwards(model_like, local_chunks)

    def finish_gradients(self, policy: Any, backward: bool) -> bool:
        """Average the accumulated gradients over the processes; returns whether any process
        back-propagated a loss (then every process steps its optimizer, else none does)."""
        if not self.enabled:
            return backward
        return self.engine.finish_gradients(policy, backward)

    def clip_grad_norm(self, params: Sequence[Any], max_norm: float) -> float:
        if self.engine is not None:
            return self.engine.clip_grad_norm(params, max_norm)
        import torch

        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    def checkpoint_views(self, policy: Any, optimizer: Any) -> tuple[Any, Any]:
        """What :func:`siri_bench.training.checkpoint.save_checkpoint` should save (on process 0):
        the policy and optimizer, or consolidated views of them (FSDP: gathered on every process,
        which is a collective)."""
        if self.engine is None:
            return policy, optimizer
        return self.engine.checkpoint_views(policy, optimizer)


#: The context of a one-process run.
SINGLE_PROCESS = DistContext()

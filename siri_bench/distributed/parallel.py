"""The update's parallel engines: how N processes share one optimizer step.

Both engines keep the single-process update (:mod:`siri_bench.training.update`) and its numbers:
process ``r`` back-propagates ``W * loss_r`` where ``loss_r`` is its rows' share of the mini-batch
loss (global loss-unit count as denominator), and the engine *averages* gradients over the W
processes, so every process ends with the gradient of the whole mini-batch.

* :class:`DDPEngine` (``train.strategy: ddp``): accelerate wraps the model in
  ``DistributedDataParallel``. The micro-batches run through the bare model (no hooks, gradients
  accumulate locally, as under ``no_sync``); one extra forward of a single token through the DDP
  wrapper with a zero loss then makes DDP all-reduce the accumulated gradients in its buckets. So a
  process may have any number of micro-batches (rows are not split evenly), and DDP still sees
  exactly one synchronising backward per optimizer step on every process.
* :class:`FSDPEngine` (``train.strategy: fsdp``): torch FSDP2 ``fully_shard`` on every decoder
  layer and the root (as accelerate's FSDP2 path does; accelerate applies its FSDP plugin on GPUs
  only, so the engine calls torch directly and the same code runs on CPU with gloo). Every forward
  and backward is a collective, so every process runs the same number of them: micro-batches and
  log-prob passes are padded with one-token passes (zero loss) up to the largest count of any
  process. Rollouts with the ``hf`` back end, and process 0's evaluation, run with whole weights
  (every FSDP unit unsharded for their duration). A frozen reference copy is sharded too.

Checkpoints are always written in the single-process format (:meth:`FSDPEngine.checkpoint_views`
gathers full weights and a full optimizer state keyed by parameter index), and a checkpoint is
always loaded into the plain model and optimizer before the engine is made, so a run saved by N
processes resumes on M, with either strategy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from siri_bench.errors import ConfigError, RunStateError

log = logging.getLogger(__name__)

#: Token id of the one-token padding passes (any id of the vocabulary does).
PAD_TOKEN = 0


def make_engine(dist: Any, policy: Any, reference: Any, optimizer: Any, *, algorithm: Any = None,
                config: Any = None) -> Any:
    """The engine of ``dist.strategy`` around ``policy`` (an HFPolicy: the trainer's torch side)."""
    if dist.strategy == "fsdp":
        return FSDPEngine(dist, policy, reference, optimizer, algorithm=algorithm, config=config)
    if dist.strategy == "ddp":
        return DDPEngine(dist, policy)
    raise ConfigError(f"train.strategy = {dist.strategy!r}: use ddp or fsdp")


def _one_token(device: Any) -> Any:
    import torch

    return torch.full((1, 1), PAD_TOKEN, dtype=torch.long, device=device)


class DDPEngine:
    """``train.strategy: ddp`` (see the module docstring)."""

    def __init__(self, dist: Any, policy: Any):
        self.dist = dist
        accelerator = dist.accelerator
        if accelerator is None:
            raise RuntimeError("the ddp engine needs the process group's accelerate.Accelerator")
        with dist._timed():                      # DDP broadcasts process 0's weights to the others
            self.wrapper = accelerator.prepare_model(policy.model, device_placement=False)

    def inference_weights(self) -> Any:
        return nullcontext()

    def micro_batch_count(self, local: int) -> int:
        return local

    def pad_micro_batch(self, policy: Any) -> None:
        return None                              # DDP synchronises once per step, in finish_gradients

    def pad_forwards(self, model_like: Any, local_chunks: int) -> None:
        return None

    def finish_gradients(self, policy: Any, backward: bool) -> bool:
        if not self.dist.any(backward):
            return False
        with self.dist._timed():
            ids = _one_token(policy.device)
            out = self.wrapper(input_ids=ids, attention_mask=ids.new_ones(ids.shape))
            (out.logits.float().sum() * 0.0).backward()   # DDP all-reduces every bucket here
        return True

    def clip_grad_norm(self, params: Sequence[Any], max_norm: float) -> float:
        import torch

        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    def checkpoint_views(self, policy: Any, optimizer: Any) -> tuple[Any, Any]:
        return policy, optimizer                 # every process holds the same full weights and state


# ----------------------------------------------------------------------------------------------
# FSDP2
# ----------------------------------------------------------------------------------------------
def _base_model(model: Any) -> Any:
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def decoder_layer_classes(model: Any) -> set[str]:
    """Class names of the model's transformer blocks (transformers' ``_no_split_modules``)."""
    names = getattr(_base_model(model), "_no_split_modules", None) or []
    return {str(n) for n in names}


def optimizer_param_names(model: Any, optimizer: Any) -> list[str]:
    """The parameter name of each optimizer parameter, in the optimizer's (state-dict index) order."""
    by_id = {id(p): n for n, p in model.named_parameters()}
    names = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) not in by_id:
                raise RuntimeError("an optimizer parameter is not a parameter of the model")
            names.append(by_id[id(p)])
    return names


def index_to_name_state(state: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """A torch optimizer state dict keyed by parameter index -> keyed by parameter name (the
    full-state format of ``torch.distributed.checkpoint.state_dict``)."""
    return {"state": {names[int(i)]: s for i, s in state["state"].items()},
            "param_groups": [{**g, "params": [names[int(i)] for i in g["params"]]} for g in state["param_groups"]]}


def name_to_index_state(state: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The inverse of :func:`index_to_name_state` (the single-process checkpoint format)."""
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in state["state"] if n not in index]
    if missing:
        raise RunStateError(f"optimizer state for unknown parameters {missing[:3]}")
    return {"state": {index[n]: s for n, s in state["state"].items()},
            "param_groups": [{**g, "params": [index[n] for n in g["params"]]} for g in state["param_groups"]]}


class ConsolidatedPolicy:
    """What a checkpoint saves of a sharded policy: the full weights gathered on process 0."""

    def __init__(self, policy: Any, state_dict: dict[str, Any]):
        self.policy = policy
        self.state_dict = state_dict

    def save_pretrained(self, folder: str | Path) -> None:
        model = self.policy.model
        # gathered copies no longer share storage, so drop tied duplicates (lm_head of tied embeddings)
        # by name, as a one-process save does: the first name of each parameter is kept
        kept = {n for n, _ in model.named_parameters()} | {n for n, _ in model.named_buffers()}
        every = {n for n, _ in model.named_parameters(remove_duplicate=False)}
        state = {k: v for k, v in self.state_dict.items() if k in kept or k not in every}
        model.save_pretrained(folder, state_dict=state, safe_serialization=True)
        self.policy.tokenizer.save_pretrained(folder)


class ConsolidatedOptimizer:
    """What a checkpoint saves of a sharded optimizer: its full state in the single-process format."""

    def __init__(self, state: dict[str, Any]):
        self._state = state

    def state_dict(self) -> dict[str, Any]:
        return self._state


class FSDPEngine:
    """``train.strategy: fsdp`` (see the module docstring)."""

    def __init__(self, dist: Any, policy: Any, reference: Any, optimizer: Any, *, algorithm: Any = None,
                 config: Any = None):
        from torch.distributed.fsdp import FSDPModule

        self.dist = dist
        self.policy = policy
        if config is not None:
            _check_fsdp_config(config, algorithm)
        self.gather_for_inference = config is None or config.policy.backend == "hf"
        self.offload = bool(config is not None and config.train.fsdp_cpu_offload)
        model = policy.model
        self.names = optimizer_param_names(model, optimizer)
        full_state = optimizer.state_dict()
        with dist._timed():
            self._shard(model)
            if reference is not None and getattr(reference, "model", None) is not None \
                    and reference.model is not model:
                self._shard(reference.model)      # a frozen full copy: sharded like the policy
        self._repoint_optimizer(model, optimizer)
        if full_state["state"]:
            self.load_optimizer_state(optimizer, full_state)
        self.units = [m for m in model.modules() if isinstance(m, FSDPModule)]
        log.info("fsdp: %d sharded units over %d processes", len(self.units), dist.world_size)

    def _shard(self, model: Any) -> None:
        from torch.distributed.fsdp import CPUOffloadPolicy, fully_shard

        kwargs: dict[str, Any] = {"reshard_after_forward": True}
        if self.offload:
            kwargs["offload_policy"] = CPUOffloadPolicy()
        layers = decoder_layer_classes(model)
        if not layers:
            log.warning("fsdp: the model names no decoder-layer classes; sharding it as one unit")
        for module in model.modules():
            if type(module).__name__ in layers:
                fully_shard(module, **kwargs)
        fully_shard(model, **kwargs)

    def _repoint_optimizer(self, model: Any, optimizer: Any) -> None:
        """fully_shard replaced the parameters by sharded ones: point the optimizer at them."""
        params = dict(model.named_parameters())
        optimizer.state.clear()
        k = 0
        for group in optimizer.param_groups:
            n = len(group["params"])
            group["params"] = [params[name] for name in self.names[k:k + n]]
            k += n

    def load_optimizer_state(self, optimizer: Any, state: dict[str, Any]) -> None:
        """Load a full single-process optimizer state into the sharded optimizer."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        with self.dist._timed():
            set_optimizer_state_dict(self.policy.model, optimizer, index_to_name_state(state, self.names),
                                     options=StateDictOptions(full_state_dict=True))

    # -- rollouts and evaluation with whole weights -------------------------------------------
    @contextmanager
    def inference_weights(self) -> Iterator[None]:
        if not self.gather_for_inference:           # vLLM engines hold whole weights themselves
            yield
            return
        with self.dist._timed():
            for unit in self.units:
                unit.set_reshard_after_forward(False, recurse=False)
                unit.unshard()
        try:
            yield
        finally:
            for unit in self.units:
                unit.reshard()
                unit.set_reshard_after_forward(True, recurse=False)

    # -- equal numbers of collectives on every process ------------------------------------------
    def micro_batch_count(self, local: int) -> int:
        return int(self.dist.max(local))

    def pad_micro_batch(self, policy: Any) -> None:
        lp = policy.logprobs([[PAD_TOKEN]], [[PAD_TOKEN]], grad=True)
        (lp.values.sum() * 0.0).backward()

    def pad_forwards(self, model_like: Any, local_chunks: int) -> None:
        for _ in range(int(self.dist.max(local_chunks)) - int(local_chunks)):
            model_like.logprobs([[PAD_TOKEN]], [[PAD_TOKEN]], grad=False)

    def finish_gradients(self, policy: Any, backward: bool) -> bool:
        return self.dist.any(backward)              # each backward already reduce-scattered its gradients

    def clip_grad_norm(self, params: Sequence[Any], max_norm: float) -> float:
        import torch

        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if hasattr(norm, "full_tensor"):
            norm = norm.full_tensor()
        return float(norm)

    # -- checkpoints ---------------------------------------------------------------------------
    def checkpoint_views(self, policy: Any, optimizer: Any) -> tuple[Any, Any]:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        with self.dist._timed():
            weights = get_model_state_dict(policy.model, options=options)
            state = get_optimizer_state_dict(policy.model, optimizer, options=options)
        if not self.dist.is_main:
            return None, None
        return ConsolidatedPolicy(policy, weights), ConsolidatedOptimizer(name_to_index_state(state, self.names))


def check_strategy(config: Any) -> None:
    """Refuse, before any process starts, a multi-process config that the strategy cannot serve."""
    device = str(config.policy.device)
    if config.train.processes > 1 and device.startswith("cuda:"):
        raise ConfigError(f"policy.device = {device!r} with train.processes = {config.train.processes}: every "
                          "process needs its own GPU; use policy.device cuda (process r takes its node's GPU r)")
    if config.train.processes > 1 and config.train.strategy == "fsdp":
        from siri_bench.registry import ALGORITHMS

        _check_fsdp_config(config, ALGORITHMS.get(config.algorithm_name))


def _check_fsdp_config(config: Any, algorithm: Any) -> None:
    """What FSDP's equal-collective rule cannot serve (``algorithm``: an instance or its class)."""
    if config.policy.action_mode != "generate":
        raise ConfigError("train.strategy = 'fsdp' supports policy.action_mode = 'generate' only (score mode runs a "
                          "number of forward passes per step that differs between processes); use train.strategy ddp")
    if algorithm is not None:
        from algorithms.base import Algorithm

        cls = algorithm if isinstance(algorithm, type) else type(algorithm)
        if cls.loss_terms is not Algorithm.loss_terms:
            raise ConfigError(f"train.strategy = 'fsdp': algorithm {config.algorithm_name!r} adds loss terms with "
                              "forward passes of their own, which FSDP cannot pad; use train.strategy ddp")

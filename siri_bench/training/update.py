"""The policy update of one iteration: K epochs of mini-batch optimizer steps over the step rows.

Before the epochs, the loss units' log-probs under the current weights (``old``, the PPO ratio's
denominator, recomputed by the trainer as verl does; the sampling-time ones are only compared with
them as a diagnostic) and under the frozen reference policy (``ref``, only with a KL term) are
computed once, without gradients, for the rows that enter the base loss.

Each epoch shuffles the rows with a generator seeded from (run seed, iteration, epoch) and cuts them
into mini-batches of ``train.minibatch_size`` rows; one mini-batch is one optimizer step. A
mini-batch is processed in micro-batches of ``train.micro_batch_size`` rows (gradient
accumulation): the base loss of each micro-batch is aggregated with the *mini-batch's* count of loss
units (``aggregation_count`` summed over its base rows), so the summed gradients equal those of one
pass over the whole mini-batch: a true token-mean, not a mean of micro-batch means. The
algorithm's ``loss_terms`` are added per micro-batch before ``backward``. Then the gradient norm is
clipped to ``train.max_grad_norm`` and AdamW steps.

The model stays in eval mode (no dropout, so the first ratio is exactly 1), except with gradient
checkpointing, which transformers only runs in train mode.

With N trainer processes (``dist``, a :class:`~siri_bench.distributed.DistContext`) every process
holds all step rows and builds the same mini-batches; process ``r`` computes the rows ``i % N == r``
of each, scales its loss by N (the parallel engine averages gradients over the processes) and keeps
the mini-batch's global loss-unit count as denominator, so the optimizer step is the
single-process one. Metrics are summed over the processes before they are divided.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from algorithms.losses import aggregation_count, policy_loss
from siri_bench.records import StepRecord, current_logprobs
from siri_bench.rollout import RolloutSettings
from siri_bench.seeding import derive_seed
from siri_bench.training.state import LossBatch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpdateSettings:
    """The update's knobs (from ``train.*`` and ``policy.score_temperature``)."""

    ppo_epochs: int = 1
    minibatch_size: int = 256
    micro_batch_size: int = 8
    max_grad_norm: float = 1.0
    clip_ratio: float = 0.2
    clip_ratio_high: float | None = None
    dual_clip: float | None = 3.0
    kl_coef: float = 0.01
    entropy_coef: float = 0.001
    loss_agg: str = "token-mean"
    score_temperature: float = 1.0
    gradient_checkpointing: bool = False

    @classmethod
    def from_config(cls, cfg: Any) -> UpdateSettings:
        t = cfg.train
        return cls(t.ppo_epochs, t.minibatch_size, t.micro_batch_size, t.max_grad_norm, t.clip_ratio,
                   t.clip_ratio_high, t.dual_clip, t.kl_coef, t.entropy_coef, t.loss_agg, cfg.policy.score_temperature,
                   cfg.policy.gradient_checkpointing)


@dataclass
class UpdateBatch:
    """The iteration's step rows with what the update needs.

    ``table`` is the step table (rows 0..N-1) with ``advantage`` and ``base`` columns; ``steps`` the
    records in table order; ``old`` / ``ref`` hold, per base row, the loss units' log-probs before
    the update and under the reference policy (1-D tensors; None for other rows, and ``ref`` is
    None without a KL term).
    """

    table: pd.DataFrame
    steps: list[StepRecord]
    old: list[torch.Tensor | None]
    ref: list[torch.Tensor | None] | None = None

    @property
    def base(self) -> np.ndarray:
        return self.table["base"].to_numpy(dtype=bool)

    @property
    def advantage(self) -> np.ndarray:
        return self.table["advantage"].to_numpy(dtype=np.float64)


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# ----------------------------------------------------------------------------------------------
# Log-probs before the update
# ----------------------------------------------------------------------------------------------
def unit_logprobs(policy: Any, steps: Sequence[StepRecord], *, micro_batch_size: int,
                  temperature: float) -> list[torch.Tensor]:
    """Per step, its loss units' log-probs under ``policy`` (no gradient): a 1-D tensor of the
    response length (generate mode; positions outside the action mask are 0) or of length 1."""
    out: list[torch.Tensor] = []
    for part in chunks(list(steps), micro_batch_size):
        lp = current_logprobs(policy, part, grad=False, temperature=temperature)
        values = torch.where(lp.mask, lp.values, torch.zeros_like(lp.values)).detach()
        for i, s in enumerate(part):
            width = 1 if s.action_mode == "score" else len(s.response_ids)
            out.append(values[i, :width].float())
    return out


def prepare_batch(policy: Any, reference: Any, table: pd.DataFrame, steps: Sequence[StepRecord],
                  settings: UpdateSettings, dist: Any = None) -> tuple[UpdateBatch, dict[str, float]]:
    """The :class:`UpdateBatch` (old and reference log-probs of the base rows) and diagnostics:
    ``train/logprob_diff``, the mean absolute difference between the recomputed and the
    sampling-time log-probs (0 up to numerics for the ``hf`` back end; vLLM's differ a little).
    With ``dist`` only this process's rows get log-probs (the diagnostic is over all processes)."""
    table = table.reset_index(drop=True)
    base = table["base"].to_numpy(dtype=bool)
    idx = np.flatnonzero(base)
    if dist is not None:
        idx = np.array([i for i in idx if dist.owns(i)], dtype=np.int64)
    chosen = [steps[i] for i in idx]
    passes = -(-len(chosen) // settings.micro_batch_size)        # forward passes per model below
    old: list[torch.Tensor | None] = [None] * len(steps)
    ref: list[torch.Tensor | None] | None = None
    diffs: list[float] = []
    if len(idx):
        recomputed = unit_logprobs(policy, chosen, micro_batch_size=settings.micro_batch_size,
                                   temperature=settings.score_temperature)
        if dist is not None:
            dist.pad_forwards(policy, passes)
        for i, values in zip(idx, recomputed):
            old[i] = values
            s = steps[i]
            sampled = [s.action_logprob] if s.action_mode == "score" else s.sample_logprobs
            mask = [1] if s.action_mode == "score" else s.action_mask
            diffs += [abs(float(v) - float(x)) for v, x, m in zip(values.tolist(), sampled, mask) if m and x is not None]
        if reference is not None:
            ref = [None] * len(steps)
            for i, values in zip(idx, unit_logprobs(reference, chosen, micro_batch_size=settings.micro_batch_size,
                                                    temperature=settings.score_temperature)):
                ref[i] = values
            if dist is not None:
                dist.pad_forwards(reference, passes)
    elif dist is not None:                # no rows here: the other processes' passes still need partners
        dist.pad_forwards(policy, 0)
        if reference is not None:
            dist.pad_forwards(reference, 0)
    if dist is not None and reference is not None and ref is None:
        ref = [None] * len(steps)
    total, count = float(np.sum(diffs)), float(len(diffs))
    if dist is not None:
        sums = dist.sum({"diff": total, "count": count})
        total, count = sums["diff"], sums["count"]
    metrics = {"train/logprob_diff": total / count if count else 0.0}
    return UpdateBatch(table, list(steps), old, ref), metrics


# ----------------------------------------------------------------------------------------------
# One mini-batch: accumulate gradients over its micro-batches
# ----------------------------------------------------------------------------------------------
@dataclass
class MinibatchStats:
    """Sums over one mini-batch's micro-batches (token-weighted where it says so)."""

    backward: bool = False              # at least one loss with a gradient was back-propagated
    tokens: float = 0.0                 # base-loss units
    weighted: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # metric * tokens
    terms: dict[str, float] = field(default_factory=lambda: defaultdict(float))     # loss_terms sums


def _pad(rows: Sequence[torch.Tensor], width: int, device: Any) -> torch.Tensor:
    out = torch.zeros((len(rows), width), dtype=torch.float32, device=device)
    for i, r in enumerate(rows):
        n = min(width, r.shape[0])
        out[i, :n] = r[:n].to(device)
    return out


def base_aggregation_count(steps: Sequence[StepRecord], agg: str) -> float:
    """The mini-batch's loss-unit count for :func:`algorithms.losses.aggregate` (``agg_count``)."""
    if not steps:
        return 0.0
    masks = [[1] if s.action_mode == "score" else list(s.action_mask) for s in steps]
    width = max(len(m) for m in masks)
    mask = torch.zeros((len(masks), max(1, width)))
    for i, m in enumerate(masks):
        mask[i, :len(m)] = torch.tensor(m, dtype=torch.float32)
    return float(aggregation_count(mask, agg))  # type: ignore[arg-type]


def accumulate_minibatch(policy: Any, batch: UpdateBatch, rows: Sequence[int], settings: UpdateSettings, *,
                         algorithm: Any = None, iteration: int = 0, rollout_settings: RolloutSettings | None = None,
                         dist: Any = None) -> MinibatchStats:
    """Back-propagate the loss of the mini-batch ``rows`` in micro-batches (gradients accumulate in
    ``.grad``; no optimizer step). Returns the mini-batch's statistics (this process's part of them
    with ``dist``, whose engine then averages the gradients: see the module docstring)."""
    stats = MinibatchStats()
    rows = [int(r) for r in rows]
    base_flags = batch.base
    advantages = batch.advantage
    base_rows = [r for r in rows if base_flags[r]]
    agg_count = base_aggregation_count([batch.steps[r] for r in base_rows], settings.loss_agg)
    minibatch_table = batch.table.iloc[rows]
    minibatch_steps = [batch.steps[r] for r in rows]
    device = getattr(policy, "device", torch.device("cpu"))
    local = rows if dist is None else [r for r in rows if dist.owns(r)]
    micro_batches = list(chunks(local, settings.micro_batch_size))
    count = len(micro_batches) if dist is None else dist.micro_batch_count(len(micro_batches))
    for k in range(count):
        micro = micro_batches[k] if k < len(micro_batches) else []
        parts: list[torch.Tensor] = []
        micro_base = [r for r in micro if base_flags[r]]
        if micro_base:
            steps = [batch.steps[r] for r in micro_base]
            current = current_logprobs(policy, steps, grad=True, temperature=settings.score_temperature,
                                       with_entropy=True)
            width = current.values.shape[1]
            old = _pad([batch.old[r] for r in micro_base], width, device)  # type: ignore[misc]
            ref = None if batch.ref is None else _pad([batch.ref[r] for r in micro_base], width, device)  # type: ignore[misc]
            adv = torch.tensor(advantages[micro_base], dtype=torch.float32, device=device)
            out = policy_loss(current.values, old, adv, current.mask, ref_logprobs=ref, entropy=current.entropy,
                              clip_low=settings.clip_ratio, clip_high=settings.clip_ratio_high,
                              dual_clip=settings.dual_clip, kl_coef=settings.kl_coef if ref is not None else 0.0,
                              entropy_coef=settings.entropy_coef, agg=settings.loss_agg,  # type: ignore[arg-type]
                              agg_count=agg_count)
            parts.append(out.loss)
            tokens = float(out.metrics["action_tokens"])
            stats.tokens += tokens
            for name in ("pg_loss", "kl_loss", "entropy", "clip_fraction", "dual_clip_fraction", "approx_kl",
                         "ratio_mean"):
                if name in out.metrics:
                    stats.weighted[name] += float(out.metrics[name]) * tokens
        if algorithm is not None and len(micro):
            loss_batch = LossBatch(batch.table.iloc[list(micro)], [batch.steps[r] for r in micro], minibatch_table,
                                   minibatch_steps, iteration, rollout_settings or RolloutSettings(env_id=""),
                                   getattr(policy, "tokenizer", None))
            for name, term in (algorithm.loss_terms(loss_batch, policy) or {}).items():
                parts.append(term)
                stats.terms[name] += float(term.detach())
        backward = False
        if parts:
            total = parts[0]
            for p in parts[1:]:
                total = total + p
            if dist is not None:
                total = total * dist.world_size       # the engine averages over the processes
            if total.requires_grad:
                total.backward()
                stats.backward = backward = True
        if dist is not None and not backward:
            dist.pad_micro_batch(policy)               # FSDP: as many backward passes as the other processes
    if dist is not None:
        stats.backward = dist.finish_gradients(policy, stats.backward)
    return stats


# ----------------------------------------------------------------------------------------------
# K epochs of optimizer steps
# ----------------------------------------------------------------------------------------------
def trainable_parameters(model: Any) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def update_policy(policy: Any, optimizer: Any, scheduler: Any, batch: UpdateBatch, settings: UpdateSettings, *,
                  run_seed: int, iteration: int, algorithm: Any = None,
                  rollout_settings: RolloutSettings | None = None, dist: Any = None) -> dict[str, Any]:
    """Run the update epochs (see the module docstring); returns the iteration's update metrics
    (over all processes with ``dist``)."""
    model = policy.model
    params = trainable_parameters(model)
    was_training = model.training
    model.train(settings.gradient_checkpointing)
    n = len(batch.steps)
    tokens = 0.0
    weighted: dict[str, float] = defaultdict(float)
    terms: dict[str, float] = defaultdict(float)
    grad_norms: list[float] = []
    minibatches = 0
    skipped = 0
    try:
        for epoch in range(settings.ppo_epochs):
            order = np.random.default_rng(derive_seed(run_seed, "train", "update", iteration, epoch)).permutation(n)
            for rows in chunks(order, settings.minibatch_size):
                optimizer.zero_grad(set_to_none=True)
                stats = accumulate_minibatch(policy, batch, rows, settings, algorithm=algorithm, iteration=iteration,
                                             rollout_settings=rollout_settings, dist=dist)
                minibatches += 1
                tokens += stats.tokens
                for k, v in stats.weighted.items():
                    weighted[k] += v
                for k, v in stats.terms.items():
                    terms[k] += v
                if not stats.backward:
                    continue
                if dist is None:
                    norm = float(torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm))
                else:
                    norm = dist.clip_grad_norm(params, settings.max_grad_norm)
                if not math.isfinite(norm):
                    # a NaN/inf gradient (e.g. a bf16 overflow) would turn every weight into NaN through
                    # the clip and the AdamW step: skip this optimizer step instead, count it and say so
                    skipped += 1
                    optimizer.zero_grad(set_to_none=True)
                    log.warning("iteration %d: non-finite gradient norm (%s) in a mini-batch; optimizer step "
                                "skipped (mini-batch sums: %s)", iteration, norm,
                                ", ".join(f"{k}={v:.4g}" for k, v in sorted({**stats.weighted, **stats.terms}.items())))
                    continue
                grad_norms.append(norm)
                optimizer.step()
                scheduler.step()
            optimizer.zero_grad(set_to_none=True)
    finally:
        model.train(was_training)
    if dist is not None:                          # sums over the processes, then the same divisions
        tokens, weighted, terms = _sum_over_processes(dist, tokens, weighted, terms)
    names = {"pg_loss": "train/pg_loss", "kl_loss": "train/kl", "entropy": "train/entropy",
             "clip_fraction": "train/clip_fraction", "dual_clip_fraction": "train/dual_clip_fraction",
             "approx_kl": "train/approx_kl", "ratio_mean": "train/ratio_mean"}
    out: dict[str, Any] = {metric: (weighted[k] / tokens if tokens > 0 and k in weighted else None)
                           for k, metric in names.items()}
    out["train/grad_norm"] = float(np.mean(grad_norms)) if grad_norms else None
    out["train/optimizer_steps"] = len(grad_norms)
    out["train/skipped_steps"] = skipped
    out["train/loss_tokens"] = tokens / max(1, settings.ppo_epochs)
    out["train/lr"] = float(optimizer.param_groups[0]["lr"]) if optimizer.param_groups else None
    for name, total in terms.items():
        out[f"loss/{name}"] = total / max(1, minibatches)
    return out


def _sum_over_processes(dist: Any, tokens: float, weighted: dict[str, float], terms: dict[str, float]
                        ) -> tuple[float, dict[str, float], dict[str, float]]:
    """The update's token count and metric sums added up over the processes (names a process never
    saw count 0 there)."""
    w_names = dist.union_names(list(weighted))
    t_names = dist.union_names(list(terms))
    values = {"tokens": tokens, **{f"w/{k}": weighted.get(k, 0.0) for k in w_names},
              **{f"t/{k}": terms.get(k, 0.0) for k in t_names}}
    total = dist.sum(values)
    summed_w: dict[str, float] = defaultdict(float, {k: total[f"w/{k}"] for k in w_names})
    summed_t: dict[str, float] = defaultdict(float, {k: total[f"t/{k}"] for k in t_names})
    return total["tokens"], summed_w, summed_t

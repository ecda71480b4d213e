"""The update on the tiny model, checked by hand: gradients equal the policy-gradient formula,
one optimizer step moves log-probs the advantage's way, zero advantages move nothing (but the
entropy term), and gradient accumulation over micro-batches equals one big batch."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from algorithms.losses import entropy_from_logits
from siri_bench.records import current_logprobs
from siri_bench.training.checkpoint import make_optimizer
from siri_bench.training.update import (
    UpdateBatch,
    UpdateSettings,
    accumulate_minibatch,
    unit_logprobs,
    update_policy,
)
from tests.training.conftest import make_step, tiny_policy

PROMPTS = ["go to countertop 1. You arrive at loc 1.", "open drawer 1. The drawer 1 is open.",
           "take mug 1 from countertop 1.", "look. inventory. Nothing happens.", "Your task is to: put a clean mug",
           "heat egg 1 with microwave 1."]
RESPONSES = ["<think>go</think><action>look</action>", "<action>inventory</action>",
             "<think>the mug</think><action>take mug 1 from countertop 1</action>", "<action>go to cabinet 1</action>",
             "<think>x</think><action>open drawer 1</action>", "<action>examine book 1</action>"]
CANDIDATES = ("look", "inventory", "go to countertop 1", "open drawer 1")


def batch_of(policy, steps, advantages, *, reference=None, old_shift=None) -> UpdateBatch:
    table = pd.DataFrame({"advantage": np.asarray(advantages, dtype=float), "base": True})
    old = unit_logprobs(policy, steps, micro_batch_size=len(steps), temperature=1.0)
    if old_shift is not None:
        old = [o + torch.as_tensor(s, dtype=o.dtype) for o, s in zip(old, old_shift)]
    ref = None if reference is None else unit_logprobs(reference, steps, micro_batch_size=len(steps), temperature=1.0)
    return UpdateBatch(table, list(steps), list(old), ref)


def grads(model) -> list[torch.Tensor]:
    return [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]


def generate_steps(policy, n=1):
    return [make_step(policy, PROMPTS[i], RESPONSES[i], episode=f"e{i}", step=0) for i in range(n)]


def test_gradient_is_the_advantage_weighted_logprob_gradient(policy):
    """Ratio 1, no KL, no entropy: grad L = -(1/T) sum_t A * grad log pi(a_t) over T action tokens."""
    steps = generate_steps(policy, 2)
    settings = UpdateSettings(micro_batch_size=2, kl_coef=0.0, entropy_coef=0.0, dual_clip=None)
    batch = batch_of(policy, steps, [1.5, -0.5])
    policy.model.zero_grad()
    accumulate_minibatch(policy, batch, [0, 1], settings)
    got = grads(policy.model)

    policy.model.zero_grad()
    lp = current_logprobs(policy, steps, grad=True)
    tokens = lp.mask.sum()
    adv = torch.tensor([1.5, -0.5])[:, None]
    (-(adv * lp.values * lp.mask).sum() / tokens).backward()
    want = grads(policy.model)
    assert any(g.abs().sum() > 0 for g in want)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("mode", ["generate", "score"])
def test_one_step_moves_logprob_the_advantages_way(sign, mode):
    policy = tiny_policy()
    if mode == "score":
        steps = [make_step(policy, PROMPTS[0], mode="score", candidates=CANDIDATES, chosen=2)]
    else:
        steps = generate_steps(policy, 1)
    optimizer, scheduler = make_optimizer(policy.model, _train(lr=1e-3))
    before = current_logprobs(policy, steps, grad=False).values.sum().item()
    batch = batch_of(policy, steps, [sign])
    metrics = update_policy(policy, optimizer, scheduler, batch,
                            UpdateSettings(minibatch_size=4, micro_batch_size=4, kl_coef=0.0, entropy_coef=0.0),
                            run_seed=0, iteration=1)
    after = current_logprobs(policy, steps, grad=False).values.sum().item()
    assert metrics["train/optimizer_steps"] == 1
    assert (after - before) * sign > 1e-4, (before, after)


def test_zero_advantages_and_no_kl_leave_weights_unchanged(policy):
    steps = generate_steps(policy, 3)
    start = copy.deepcopy(policy.model.state_dict())
    optimizer, scheduler = make_optimizer(policy.model, _train(lr=1e-2))
    metrics = update_policy(policy, optimizer, scheduler, batch_of(policy, steps, [0.0, 0.0, 0.0]),
                            UpdateSettings(minibatch_size=2, micro_batch_size=1, kl_coef=0.0, entropy_coef=0.0),
                            run_seed=0, iteration=1)
    assert metrics["train/optimizer_steps"] == 2 and metrics["train/grad_norm"] == 0.0
    for name, value in policy.model.state_dict().items():
        assert torch.equal(value, start[name]), name


def test_zero_advantages_leave_only_the_entropy_gradient(policy):
    """With A = 0 and no KL the gradient is exactly that of -c * token-mean entropy."""
    steps = generate_steps(policy, 3)
    coef = 0.01
    batch = batch_of(policy, steps, [0.0, 0.0, 0.0])
    policy.model.zero_grad()
    accumulate_minibatch(policy, batch, [0, 1, 2], UpdateSettings(micro_batch_size=2, kl_coef=0.0, entropy_coef=coef))
    got = grads(policy.model)

    policy.model.zero_grad()
    ids, mask, positions = policy._left_pad([s.prompt_ids + s.response_ids for s in steps])
    logits = policy._forward(ids, mask, positions).float()
    total, count = 0.0, 0
    width = ids.shape[1]
    for i, s in enumerate(steps):
        n = len(s.response_ids)
        # the logits predicting response token j sit at position width - n - 1 + j
        ent = entropy_from_logits(logits[i, width - n - 1: width - 1])
        total, count = total + ent.sum(), count + n
    (-coef * total / count).backward()
    want = grads(policy.model)
    assert any(w.abs().sum() > 0 for w in want)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean"])
@pytest.mark.parametrize("mode", ["generate", "score"])
def test_micro_batches_accumulate_to_the_full_batch_gradient(agg, mode):
    """One mini-batch of 6 rows (different lengths, KL, entropy, clipped ratios) gives the same
    gradient in one micro-batch as in micro-batches of 1, 4 and 5 rows."""
    policy = tiny_policy()
    reference = tiny_policy()
    with torch.no_grad():
        for p in reference.model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    if mode == "score":
        steps = [make_step(policy, PROMPTS[i], mode="score", candidates=CANDIDATES, chosen=i % 4, episode=f"e{i}")
                 for i in range(6)]
    else:
        steps = generate_steps(policy, 6)
    rng = np.random.default_rng(0)
    shift = [rng.normal(0, 0.3, len(s.response_ids) if mode == "generate" else 1) for s in steps]
    batch = batch_of(policy, steps, [1.0, -2.0, 0.5, 0.0, -0.7, 1.3], reference=reference, old_shift=shift)
    results = {}
    for micro in (6, 1, 4, 5):
        policy.model.zero_grad()
        settings = UpdateSettings(micro_batch_size=micro, kl_coef=0.05, entropy_coef=0.01, loss_agg=agg, dual_clip=3.0)
        stats = accumulate_minibatch(policy, batch, [3, 0, 5, 1, 4, 2], settings)
        results[micro] = grads(policy.model)
        assert stats.backward
    assert sum(float(g.abs().sum()) for g in results[6]) > 0
    for micro in (1, 4, 5):
        for g, w in zip(results[micro], results[6]):
            torch.testing.assert_close(g, w, rtol=0, atol=1e-6)


def _train(**kw):
    from siri_bench.config import TrainConfig

    return TrainConfig(**kw)


def test_a_non_finite_gradient_skips_the_optimizer_step(policy, monkeypatch, caplog):
    """A NaN gradient (e.g. a bf16 overflow on GPU) must not reach the weights through clip + AdamW:
    that mini-batch's step is skipped and counted; the other mini-batches still step."""
    import siri_bench.training.update as update

    steps = generate_steps(policy, 4)
    start = copy.deepcopy(policy.model.state_dict())
    optimizer, scheduler = make_optimizer(policy.model, _train(lr=1e-2))
    batch = batch_of(policy, steps, [1.0, -1.0, 1.0, -1.0])
    real = update.accumulate_minibatch
    calls = []

    def poisoned(policy_, batch_, rows, *args, **kwargs):
        stats = real(policy_, batch_, rows, *args, **kwargs)
        calls.append(list(rows))
        if len(calls) == 1:                       # the first mini-batch's gradient becomes NaN
            next(p for p in policy_.model.parameters() if p.grad is not None).grad.fill_(float("nan"))
        return stats

    monkeypatch.setattr(update, "accumulate_minibatch", poisoned)
    with caplog.at_level("WARNING"):
        metrics = update_policy(policy, optimizer, scheduler, batch,
                                UpdateSettings(minibatch_size=2, micro_batch_size=1, kl_coef=0.0, entropy_coef=0.0),
                                run_seed=0, iteration=1)
    assert len(calls) == 2
    assert metrics["train/skipped_steps"] == 1 and metrics["train/optimizer_steps"] == 1
    assert np.isfinite(metrics["train/grad_norm"])
    assert "non-finite gradient norm" in caplog.text
    changed = False
    for name, value in policy.model.state_dict().items():
        assert torch.isfinite(value).all(), name
        changed |= not torch.equal(value, start[name])
    assert changed, "the finite mini-batch must still update the weights"

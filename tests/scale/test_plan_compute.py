"""``siri-bench plan-compute``: parameter counts and memory lines checked by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from siri_bench.cli import main
from siri_bench.config import load_config
from siri_bench.distributed.plan import GIB, KNOWN, architecture_of, plan_compute

REPO = Path(__file__).resolve().parents[2]
QWEN7B = REPO / "configs" / "gigpo_alfworld_qwen7b.yaml"


def test_qwen7b_parameter_count_and_kv_cache_by_hand():
    arch = KNOWN["qwen2.5-7b-instruct"]
    # per layer: q 3584x3584, k and v 3584x512, o 3584x3584, gate/up/down 3 x 3584x18944,
    # q/k/v biases 3584+512+512, two RMSNorms 2 x 3584
    per_layer = 2 * 3584 * 3584 + 2 * 3584 * 512 + 3 * 3584 * 18944 + (3584 + 2 * 512) + 2 * 3584
    assert per_layer == 233_057_792
    # untied embeddings and LM head 2 x 152064 x 3584, final norm 3584
    assert arch.parameters() == 28 * per_layer + 2 * 152064 * 3584 + 3584 == 7_615_616_512
    # LoRA r=64 on all 7 linears: r * (in + out) each
    lora = 64 * ((3584 + 3584) * 2 + (3584 + 512) * 2 + (3584 + 18944) * 3) * 28
    assert arch.lora_parameters(64, "all-linear") == lora == 161_480_704
    assert arch.lora_parameters(64, ["q_proj", "v_proj"]) == 64 * (7168 + 4096) * 28
    # K and V, 28 layers, 4 KV heads of 128, bf16: 56 KiB per token
    assert arch.kv_bytes_per_token() == 2 * 28 * 4 * 128 * 2 == 57_344


def test_tiny_formula_matches_the_real_model():
    from siri_bench.models import build_tiny_causal_lm

    model = build_tiny_causal_lm()
    assert architecture_of("tiny-random").parameters() == sum(p.numel() for p in model.parameters())


def test_paper_config_memory_lines_by_hand():
    cfg = load_config(QWEN7B)
    assert cfg.train.processes == 4 and cfg.train.strategy == "fsdp" and cfg.resources.gpu_memory_gib == 80
    plan = plan_compute(cfg)
    p = 7_615_616_512
    assert plan.gpus == 4
    # float32 master weights, gradients, 2 AdamW moments and the float32 reference, sharded over 4
    assert plan.update["weights"] == pytest.approx(p * 4 / 4)
    assert plan.update["gradients"] == pytest.approx(p * 4 / 4)
    assert plan.update["AdamW state"] == pytest.approx(p * 8 / 4)
    assert plan.update["reference policy"] == pytest.approx(p * 4 / 4)
    # gradient checkpointing: micro-batch 8 x (2048 + 512) tokens, 28 layer inputs of 3584 + one
    # layer's 4h + 2*kv*d + 4I values, in bf16
    act = 8 * 2560 * (28 * 3584 + 4 * 3584 + 2 * 4 * 128 + 4 * 18944) * 2
    assert plan.update["activations (micro-batch 8 x 2560)"] == act
    # logits of 513 response positions: bf16 + fp32 log-softmax + fp32 grad
    assert plan.update["logits (micro-batch 8 x 513)"] == 8 * 513 * 152064 * 10
    # the colocated vLLM engine takes 0.6 of 80 GiB while rolling out and sleeps in the update
    assert plan.rollout["vLLM engine (weights + KV cache)"] == 0.6 * 80 * GIB
    assert "vLLM engine (weights + KV cache)" not in plan.update
    rollout = (p + 2 * p + p) + 0.6 * 80 * GIB + GIB           # weights + AdamW + reference (sharded sums)
    assert sum(plan.rollout.values()) == pytest.approx(rollout)
    assert plan.peak_bytes == pytest.approx(rollout) and plan.fits       # 77.4 GiB of 80
    # tokens: 16 x 8 episodes x 50 steps x 2048 prompt / 512 completion tokens at most
    assert plan.tokens["prompt tokens (max)"] == 128 * 50 * 2048
    assert plan.tokens["completion tokens (max)"] == 128 * 50 * 512
    assert plan.tokens["optimizer steps (max)"] == 6400 // 256


def test_ddp_full_finetuning_of_7b_does_not_fit_and_the_cli_says_so(capsys):
    assert main(["plan-compute", str(QWEN7B), "train.strategy=ddp"]) == 1
    out = capsys.readouterr().out
    assert "does NOT fit" in out and "AdamW state" in out
    assert main(["plan-compute", str(QWEN7B), "policy.lora={r: 64, alpha: 64}", "train.kl_coef=0",
                 "--processes", "1"]) == 0
    out = capsys.readouterr().out
    assert "161.48M trainable" in out and ": fits" in out


def test_unknown_model_is_a_one_line_error(capsys):
    assert main(["plan-compute", str(QWEN7B), "policy.model=nobody/unknown-model"]) == 2
    assert "plan-compute does not know the architecture" in capsys.readouterr().err

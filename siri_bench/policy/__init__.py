"""Policy back ends behind one interface (:class:`Policy`).

* ``hf`` - transformers on CPU or GPU (:class:`HFPolicy`);
* ``vllm`` - vLLM's offline engine on a GPU for sampling, the transformers model for training
  (:class:`VLLMPolicy`);
* ``openai`` - any OpenAI-compatible chat endpoint, generate mode, evaluation only (:class:`OpenAIPolicy`).

:func:`build_policy` makes the back end a ``policy:`` config section asks for.
"""

from __future__ import annotations

import logging
from typing import Any

from siri_bench.errors import ConfigError, ModelNotFoundError
from siri_bench.policy.base import (
    CandidateScores,
    Completion,
    GenerationRequest,
    Policy,
    PolicyError,
    PolicyInfo,
    SamplingParams,
    TokenLogProbs,
)
from siri_bench.policy.hf import HFPolicy
from siri_bench.policy.scoring import CandidateChoice, choose_candidate

log = logging.getLogger(__name__)

__all__ = [
    "CandidateChoice", "CandidateScores", "Completion", "GenerationRequest", "HFPolicy", "Policy", "PolicyError",
    "PolicyInfo", "SamplingParams", "TokenLogProbs", "apply_lora", "build_policy", "choose_candidate",
]


def apply_lora(model: Any, lora: Any) -> Any:
    """Wrap ``model`` with peft LoRA adapters (``lora``: a LoraConfig section); base weights frozen."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=lora.target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def _resolved_device(device: str) -> str:
    from siri_bench.models import resolve_device

    return resolve_device(device)


def build_policy(cfg: Any, *, trainable: bool = False, seed: int = 0, model_seed: int = 0,
                 init_weights: Any = None) -> Policy:
    """The policy a ``policy:`` section (a PolicyConfig) describes.

    ``trainable`` adds LoRA adapters (``policy.lora``) and gradient checkpointing when configured;
    with ``dtype: auto`` on a GPU it also selects mixed precision (float32 trainable weights, bf16
    autocast forward passes). On CPU ``auto`` is float32 throughout.
    ``model_seed`` initialises the tiny random model (fixed at 0 so every run starts from the same
    weights); ``seed`` seeds the vLLM engine. ``init_weights`` (a saved policy folder: full weights
    or a LoRA adapter, which is merged) initialises the model before any new adapters are added
    (``train.init_from``).
    """
    if cfg.backend == "openai":
        if cfg.action_mode == "score":
            raise ConfigError("policy.action_mode = 'score' needs prompt log-probs, which the openai back end "
                              "cannot give; use generate, or the hf/vllm back end")
        if trainable:
            raise ConfigError("policy.backend = 'openai' cannot be trained; use hf or vllm")
        from siri_bench.models import load_tokenizer
        from siri_bench.policy.openai import OpenAIPolicy

        try:
            tokenizer = load_tokenizer(cfg.model)
        except ModelNotFoundError:
            log.info("no local tokenizer for %r: token counts come from the server's usage", cfg.model)
            tokenizer = None
        return OpenAIPolicy(cfg.openai, tokenizer=tokenizer, model_name=cfg.openai.model)

    from siri_bench.models import load_causal_lm

    device = cfg.device
    if cfg.backend == "vllm" and device == "auto":
        device = "cuda"
    if cfg.backend == "vllm":
        from siri_bench.policy.vllm import import_vllm

        import_vllm()                               # a clear error before loading any weights
    if cfg.cpu_threads is not None and not str(device).startswith("cuda"):
        import torch

        torch.set_num_threads(cfg.cpu_threads)
    dtype = cfg.dtype
    mixed = trainable and dtype == "auto" and _resolved_device(device).startswith("cuda")
    if mixed:
        # Mixed precision on GPU: trainable weights stay float32 (an lr of 1e-6 is below bf16's
        # resolution), forward passes run in bf16 autocast. A frozen LoRA base is stored in bf16;
        # peft keeps the adapters in float32.
        dtype = "bfloat16" if cfg.lora is not None else "float32"
    model, tokenizer = load_causal_lm(cfg.model, dtype=dtype, device=device, seed=model_seed,
                                      tiny_overrides=cfg.tiny or None)
    if init_weights is not None:
        from siri_bench.policy.hf import load_initial_weights

        model = load_initial_weights(model, init_weights)
    if trainable and cfg.lora is not None:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)                 # the adapters' random init is part of the run's seed
            model = apply_lora(model, cfg.lora)
    if trainable and cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    hf = HFPolicy(model, tokenizer, model_name=cfg.model, generation_batch_size=cfg.generation_batch_size,
                  score_chunk_size=cfg.score_chunk_size)
    if mixed:
        import torch

        hf.autocast_dtype = torch.bfloat16
    if cfg.backend == "hf":
        return hf
    from siri_bench.policy.vllm import VLLMPolicy

    return VLLMPolicy.create(hf, cfg, seed=seed)

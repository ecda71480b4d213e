"""``siri-bench plan-compute CONFIG``: memory per GPU and tokens per iteration, before launching.

An estimate from the model's architecture and the config, with every assumption written next to its
number (:meth:`ComputePlan.lines`), so a user sees whether a run fits the GPUs it was sized for
(``resources.gpu_memory_gib``) without starting it. What is counted, per trainer process (= GPU):

* **weights**: the trainer's copy (float32 master weights for full fine-tuning with mixed precision on
  GPU, bf16 base + float32 adapters with LoRA; the config's dtype otherwise);
* **gradients** and **AdamW state** (two moments) of the trainable parameters, in their dtype;
* **reference**: the frozen copy for the KL term (full fine-tuning with ``kl_coef > 0``; LoRA uses
  the base model with adapters disabled: no copy);
* ``train.strategy: fsdp`` divides the four lines above by ``train.processes``;
  ``fsdp_cpu_offload`` moves them to CPU memory;
* **activations** of one micro-batch (``micro_batch_size`` sequences of ``max_prompt_tokens +
  max_new_tokens``): per token and layer, the tensors autograd keeps for a SwiGLU decoder block with
  flash attention, ``4h + 2·kv·d + 4I`` values (no ``seq²`` term); with gradient checkpointing only
  each layer's input (``h``) plus one layer's full set;
* **logits** of the micro-batch's response positions (``max_new_tokens + 1``; the trainer passes
  ``logits_to_keep``): ``vocab`` values per position in the compute dtype, plus float32 log-softmax
  and its gradient;
* **rollout KV cache**: the vLLM engine's pool (``gpu_memory_utilization`` of the GPU: its bf16
  weights, the rest KV cache; how many tokens that holds against what the process's concurrent
  episodes need), or the ``hf`` back end's generation cache for ``generation_batch_size`` sequences;
* 1 GiB of CUDA context and workspace per GPU.

Peak = the larger of the rollout phase (weights, AdamW state, reference, rollout cache; gradients
are freed between updates) and the update phase (everything but the rollout cache when vLLM sleeps
during the update, ``enable_sleep_mode``). Estimates: allocator fragmentation and temporary buffers
are not counted, so leave ~10% head room.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from siri_bench.errors import ConfigError, ModelNotFoundError

GIB = 1024**3
CUDA_CONTEXT_BYTES = 1 * GIB
LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Architecture:
    """What the memory plan needs of a decoder-only (Llama/Qwen2-style, SwiGLU) model."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied_embeddings: bool
    qkv_bias: bool = False

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear layer of one decoder block, by peft module name."""
        h, d, i = self.hidden, self.head_dim, self.intermediate
        return {"q_proj": (h, self.heads * d), "k_proj": (h, self.kv_heads * d), "v_proj": (h, self.kv_heads * d),
                "o_proj": (self.heads * d, h), "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def parameters(self) -> int:
        """Total parameters: embeddings (+ untied LM head), per layer its linears, q/k/v biases and
        two RMSNorm weights, and the final norm."""
        d = self.head_dim
        per_layer = sum(a * b for a, b in self.linear_shapes().values()) + 2 * self.hidden
        if self.qkv_bias:
            per_layer += (self.heads + 2 * self.kv_heads) * d
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return embeddings + self.layers * per_layer + self.hidden

    def lora_parameters(self, r: int, target_modules: list[str] | str) -> int:
        """Parameters of LoRA adapters of rank ``r`` (A: r x in, B: out x r) on the target linears."""
        shapes = self.linear_shapes()
        if target_modules == "all-linear":
            names = list(LINEAR_NAMES)
        else:
            targets = [target_modules] if isinstance(target_modules, str) else list(target_modules)
            names = [n for n in LINEAR_NAMES if n in targets]
            if not names:
                raise ConfigError(f"policy.lora.target_modules = {target_modules!r} names none of {LINEAR_NAMES}")
        return self.layers * sum(r * (shapes[n][0] + shapes[n][1]) for n in names)

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        """KV cache per token: keys and values of every layer's KV heads."""
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes

    def activation_values_per_token_layer(self) -> int:
        """Values autograd keeps per token and layer (see the module docstring)."""
        return 4 * self.hidden + 2 * self.kv_heads * self.head_dim + 4 * self.intermediate


#: Published architectures (the models' config.json), looked up by lower-case name without org.
KNOWN: dict[str, Architecture] = {
    "qwen2.5-7b-instruct": Architecture("Qwen2.5-7B-Instruct", 28, 3584, 28, 4, 18944, 152064, False, True),
    "qwen2.5-3b-instruct": Architecture("Qwen2.5-3B-Instruct", 36, 2048, 16, 2, 11008, 151936, True, True),
    "qwen2.5-1.5b-instruct": Architecture("Qwen2.5-1.5B-Instruct", 28, 1536, 12, 2, 8960, 151936, True, True),
    "qwen2.5-0.5b-instruct": Architecture("Qwen2.5-0.5B-Instruct", 24, 896, 14, 2, 4864, 151936, True, True),
    "smollm2-135m-instruct": Architecture("SmolLM2-135M-Instruct", 30, 576, 9, 3, 1536, 49152, True, False),
}
for _key in list(KNOWN):
    KNOWN[_key.removesuffix("-instruct")] = KNOWN[_key]


def architecture_of(model: str) -> Architecture:
    """The architecture of ``policy.model``: a known one, the tiny test model, or a local config.json."""
    key = model.strip().lower().rsplit("/", 1)[-1]
    if key in KNOWN:
        return KNOWN[key]
    from siri_bench.models import TINY_ALIASES, resolve_model

    if key in TINY_ALIASES:
        return _from_hf_config(model, _tiny_config())
    try:
        source = resolve_model(model)
        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(source.path, local_files_only=True,
                                         **({"gguf_file": source.gguf_file} if source.gguf_file else {}))
    except (ModelNotFoundError, OSError, ValueError) as exc:
        raise ConfigError(f"plan-compute does not know the architecture of {model!r} ({exc}); known: "
                          f"{', '.join(sorted(k for k in KNOWN if k.endswith('instruct')))}, tiny-random, or a "
                          "local model folder") from None
    return _from_hf_config(model, cfg)


def _tiny_config() -> Any:
    from transformers import LlamaConfig

    from siri_bench.models import build_tiny_tokenizer

    return LlamaConfig(vocab_size=len(build_tiny_tokenizer()), hidden_size=64, intermediate_size=128,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)


def _from_hf_config(name: str, cfg: Any) -> Architecture:
    return Architecture(name, int(cfg.num_hidden_layers), int(cfg.hidden_size), int(cfg.num_attention_heads),
                        int(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads),
                        int(cfg.intermediate_size), int(cfg.vocab_size), bool(getattr(cfg, "tie_word_embeddings", False)),
                        bool(getattr(cfg, "attention_bias", False)) or getattr(cfg, "model_type", "") == "qwen2")


# ----------------------------------------------------------------------------------------------
# The plan
# ----------------------------------------------------------------------------------------------
@dataclass
class ComputePlan:
    """Memory per GPU (bytes, by line) and token counts of one iteration (see the module docstring)."""

    arch: Architecture
    gpu: bool
    processes: int
    gpus: float
    gpu_memory_gib: float | None
    parameters: int
    trainable: int
    rollout: dict[str, float] = field(default_factory=dict)      # line -> bytes in the rollout phase
    update: dict[str, float] = field(default_factory=dict)       # line -> bytes in the update phase
    cpu_bytes: float = 0.0
    tokens: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def peak_bytes(self) -> float:
        return max(sum(self.rollout.values()), sum(self.update.values()))

    @property
    def fits(self) -> bool | None:
        if self.gpu_memory_gib is None or not self.gpu:
            return None
        return self.peak_bytes <= self.gpu_memory_gib * GIB

    def lines(self) -> list[str]:
        """The plan as printable lines."""
        where = f"{self.gpus:g} GPU(s)" if self.gpu else "CPU"
        out = [f"model {self.arch.name}: {_count(self.parameters)} parameters, {_count(self.trainable)} trainable; {self.processes} trainer process(es) on {where}"]
        names = list(dict.fromkeys([*self.rollout, *self.update]))
        out.append(f"{'memory per ' + ('GPU' if self.gpu else 'process'):<42}{'rollout':>10}{'update':>10}  (GiB)")
        for name in names:
            out.append(f"  {name:<40}{self.rollout.get(name, 0) / GIB:>10.2f}{self.update.get(name, 0) / GIB:>10.2f}")
        out.append(f"  {'total':<40}{sum(self.rollout.values()) / GIB:>10.2f}{sum(self.update.values()) / GIB:>10.2f}")
        if self.cpu_bytes:
            out.append(f"CPU memory per process (offloaded): {self.cpu_bytes / GIB:.2f} GiB")
        peak = self.peak_bytes / GIB
        if self.fits is None:
            out.append(f"peak {peak:.2f} GiB" + ("" if not self.gpu else
                                                  " (set resources.gpu_memory_gib to check it against a GPU)"))
        else:
            verdict = "fits" if self.fits else "does NOT fit"
            out.append(f"peak {peak:.2f} GiB of {self.gpu_memory_gib:g} GiB per GPU: {verdict}")
        out.append("tokens per iteration (upper bounds: every episode runs max_steps with full prompts):")
        for name, value in self.tokens.items():
            out.append(f"  {name:<40}{value:>16,.0f}")
        out.extend(f"note: {n}" for n in self.notes)
        return out


def _count(n: float) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.2f}M"


def _dtype_bytes(name: str) -> int:
    return 4 if name == "float32" else 2


def plan_compute(cfg: Any) -> ComputePlan:
    """The :class:`ComputePlan` of an :class:`~siri_bench.config.ExperimentConfig`."""
    from siri_bench.distributed.launch import uses_gpu

    p, t, res = cfg.policy, cfg.train, cfg.resources
    arch = architecture_of(p.model)
    gpu = uses_gpu(cfg)
    processes = t.processes
    lora = p.lora
    total = arch.parameters()
    trainable = arch.lora_parameters(lora.r, lora.target_modules) if lora else total
    # dtypes as siri_bench.policy.build_policy chooses them
    if p.dtype == "auto":
        weight_bytes = (2 if lora else 4) if gpu else 4
        compute_bytes = 2 if gpu else 4
    else:
        weight_bytes = compute_bytes = _dtype_bytes(p.dtype)
    train_bytes = 4 if lora else weight_bytes                       # adapters stay float32 under peft
    weights = total * weight_bytes + (trainable * 4 if lora else 0)
    grads = trainable * train_bytes
    adam = trainable * train_bytes * 2
    reference = total * weight_bytes if (t.kl_coef > 0 and not lora) else 0
    plan = ComputePlan(arch, gpu, processes, 0.0, res.gpu_memory_gib, total, trainable)
    sharded = processes > 1 and t.strategy == "fsdp"
    if sharded:
        weights, grads, adam, reference = (x / processes for x in (weights, grads, adam, reference))
        plan.notes.append(f"fsdp: weights, gradients, AdamW state and reference sharded over {processes} processes")
    if sharded and t.fsdp_cpu_offload:
        plan.cpu_bytes = weights + grads + adam + reference
        plan.notes.append("fsdp_cpu_offload: sharded state in CPU memory; the GPU holds one decoder layer at a time")
        layer = (total - arch.vocab * arch.hidden) / arch.layers * weight_bytes
        weights, grads, adam, reference = layer, 0.0, 0.0, 0.0
    seq = p.max_prompt_tokens + p.max_new_tokens
    if p.backend == "vllm" and p.vllm.max_model_len:
        seq = min(seq, p.vllm.max_model_len)
    b = t.micro_batch_size
    per_layer = arch.activation_values_per_token_layer()
    if p.gradient_checkpointing:
        act_values = b * seq * (arch.layers * arch.hidden + per_layer)
    else:
        act_values = b * seq * arch.layers * per_layer
    activations = act_values * compute_bytes
    response = p.max_new_tokens + 1        # the trainer asks the model for the response positions' logits only
    logits = b * response * arch.vocab * (compute_bytes + 8)
    episodes = t.groups_per_iter * t.group_size
    concurrent = t.rollout_concurrency or -(-episodes // processes)

    common = {"weights": weights, "AdamW state": adam}
    if reference:
        common["reference policy"] = reference
    plan.rollout.update(common)
    plan.update.update(common)
    plan.update.update({"gradients": grads, f"activations (micro-batch {b} x {seq})": activations,
                        f"logits (micro-batch {b} x {response})": logits})
    gpus = processes * (res.trainer_gpus if res.trainer_gpus is not None else (1.0 if gpu else 0.0))
    if p.backend == "vllm":
        engine_weights = total * 2 / p.vllm.tensor_parallel_size
        kv_token = arch.kv_bytes_per_token(2) / p.vllm.tensor_parallel_size
        needed_tokens = concurrent * seq
        if res.gpu_memory_gib is None:
            plan.notes.append("vLLM pool unknown: set resources.gpu_memory_gib (the GPU memory this config is for)")
            pool = engine_weights + needed_tokens * kv_token
        else:
            pool = p.vllm.gpu_memory_utilization * res.gpu_memory_gib * GIB
        kv = pool - engine_weights
        if kv <= 0:
            plan.notes.append(f"vLLM: gpu_memory_utilization {p.vllm.gpu_memory_utilization} leaves no room for a KV "
                              "cache after the bf16 weights; raise it")
        else:
            fill = kv / kv_token
            plan.notes.append(f"vLLM KV cache: {kv / GIB:.2f} GiB = {fill:,.0f} tokens of {kv_token / 1024:.0f} KiB; "
                              f"{concurrent} concurrent episodes x {seq} tokens need {needed_tokens:,}"
                              + ("" if fill >= needed_tokens else " (vLLM will queue or preempt sequences)"))
        if p.vllm.placement == "separate":
            gpus += res.vllm_engines * res.vllm_gpus_per_engine
            plan.notes.append(f"vLLM on {res.vllm_engines} separate engine(s) of {res.vllm_gpus_per_engine:g} GPU(s): "
                              f"{pool / GIB:.2f} GiB each, not on the trainer GPUs (placement 'separate' is "
                              "planned here but not implemented by the trainer yet)")
        else:
            plan.rollout["vLLM engine (weights + KV cache)"] = pool
            if not (p.vllm.enable_sleep_mode and p.vllm.sleep_level > 0):
                plan.update["vLLM engine (weights + KV cache)"] = pool
            else:
                plan.notes.append(f"vLLM sleeps (level {p.vllm.sleep_level}) during the update: its memory is free then")
    elif p.backend == "hf":
        plan.rollout[f"generation KV cache ({p.generation_batch_size} seq)"] = (
            p.generation_batch_size * seq * arch.kv_bytes_per_token(compute_bytes))
    if gpu:
        plan.rollout["CUDA context"] = plan.update["CUDA context"] = CUDA_CONTEXT_BYTES
    plan.gpus = gpus
    steps = episodes * cfg.env.max_steps
    plan.tokens = {"episodes": episodes, "steps (max)": steps, "prompt tokens (max)": steps * p.max_prompt_tokens,
                   "completion tokens (max)": steps * p.max_new_tokens,
                   "trained tokens per process (max)": steps * seq / processes,
                   "optimizer steps (max)": -(-steps // t.minibatch_size) * t.ppo_epochs}
    return plan

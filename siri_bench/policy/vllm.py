"""The ``vllm`` back end: generation with vLLM's offline ``LLM`` engine on a GPU.

vLLM is an optional dependency (``pip install 'siri-bench[vllm]'``) and only runs on GPUs; this
module imports it lazily. The back end pairs an engine with the trainer's torch model (an
:class:`~siri_bench.policy.hf.HFPolicy`):

* **generation** (:meth:`VLLMPolicy.generate`): one ``LLM.generate`` call with token-id prompts and one
  ``SamplingParams`` per request (its own ``seed``), ``logprobs=0`` (the sampled token's log-prob)
  under ``logprobs_mode="raw_logprobs"``: the unmodified model distribution, the same quantity the
  ``hf`` back end records (see :mod:`siri_bench.policy.base`);
* **score mode** (:meth:`VLLMPolicy.score`): each candidate is sent as prompt + candidate with
  ``prompt_logprobs=0`` and ``max_tokens=1``; the candidate's token log-probs are read from the
  prompt log-probs of its positions (automatic prefix caching lets the candidates of one prompt
  share its KV blocks where the vLLM version allows it);
* **training log-probs** (:meth:`logprobs`, :meth:`candidate_logprobs`) are computed by the trainer's
  torch model, never by vLLM;
* **weight sync** (:meth:`on_weights_updated`): after every optimizer step the trainer's weights
  (LoRA adapters merged in) are streamed into the engine's model with its ``load_weights`` method,
  in memory (nothing is written to disk), then the prefix cache is reset so no KV computed with old
  weights is reused. The engine runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``, as
  colocated RL trainers do), so its model object is reachable;
* **memory**: the engine takes ``policy.vllm.gpu_memory_utilization`` of the GPU; with
  ``enable_sleep_mode`` it sleeps between rollouts (``policy.vllm.sleep_level``) so the update has
  the memory, and wakes up before the next rollout (weights first, then the KV cache).

Everything except the engine itself is testable on CPU with a stand-in engine (see
``tests/policy/test_vllm_backend.py``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
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

log = logging.getLogger(__name__)

INSTALL_VLLM = "the vllm back end needs vLLM and a CUDA GPU: `pip install 'siri-bench[vllm]'` on a GPU machine"

#: Attribute paths from ``LLM`` to the model object inside the engine, newest vLLM first.
ENGINE_MODEL_PATHS: tuple[tuple[str, ...], ...] = (
    ("llm_engine", "model_executor", "driver_worker", "worker", "model_runner", "model"),
    ("llm_engine", "engine_core", "engine_core", "model_executor", "driver_worker", "worker", "model_runner",
     "model"),
    ("llm_engine", "model_executor", "driver_worker", "model_runner", "model"),
)


def import_vllm() -> Any:
    """The vllm module, or a ConfigError saying how to get it."""
    try:
        import vllm
    except ImportError:
        raise ConfigError(f"policy.backend = 'vllm': vLLM is not installed; {INSTALL_VLLM}") from None
    return vllm


# ----------------------------------------------------------------------------------------------
# Request building and output conversion (pure functions, tested on CPU)
# ----------------------------------------------------------------------------------------------
def sampling_params_kwargs(params: SamplingParams, seed: int) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one generation request."""
    return {
        "n": 1,
        "temperature": 0.0 if params.greedy else float(params.temperature),
        "top_p": 1.0 if params.greedy else float(params.top_p),
        "max_tokens": int(params.max_new_tokens),
        "seed": int(seed) % (2**63),
        "logprobs": 0,                          # the sampled token's log-prob only
        "stop": list(params.stop) or None,
        "include_stop_str_in_output": True,     # the response keeps its stop string, as in hf
        "skip_special_tokens": True,
    }


def score_params_kwargs() -> dict[str, Any]:
    """``vllm.SamplingParams`` keyword arguments of a scoring request (prompt log-probs only)."""
    return {"n": 1, "temperature": 0.0, "max_tokens": 1, "prompt_logprobs": 0, "detokenize": False}


def token_prompt(ids: Sequence[int]) -> dict[str, Any]:
    """A vLLM ``TokensPrompt`` (a TypedDict): the prompt given as token ids."""
    return {"prompt_token_ids": [int(i) for i in ids]}


def _logprob_of(entry: Any, token_id: int) -> float:
    """The log-prob of ``token_id`` in one position's ``{token_id: Logprob}`` mapping."""
    if entry is None:
        raise PolicyError("vLLM returned no log-prob for a position that needs one")
    item = entry[token_id] if token_id in entry else entry[int(token_id)]
    return float(getattr(item, "logprob", item))


def completion_from_output(output: Any) -> Completion:
    """A :class:`Completion` from one vLLM ``RequestOutput``."""
    seq = output.outputs[0]
    ids = [int(t) for t in seq.token_ids]
    if seq.logprobs is None or len(seq.logprobs) < len(ids):
        raise PolicyError("vLLM returned fewer log-probs than tokens (was logprobs=0 set?)")
    logps = [_logprob_of(seq.logprobs[j], tok) for j, tok in enumerate(ids)]
    finish = "stop" if seq.finish_reason in ("stop", "abort") else "length"
    prompt_ids = getattr(output, "prompt_token_ids", None)
    return Completion(ids, logps, seq.text, finish, prompt_tokens=len(prompt_ids) if prompt_ids is not None else None)


def candidate_logprobs_from_output(output: Any, prompt_len: int) -> list[float]:
    """Token log-probs of the candidate part of a scoring request (positions >= ``prompt_len``)."""
    ids = list(output.prompt_token_ids)
    plp = output.prompt_logprobs
    if plp is None or len(plp) != len(ids):
        raise PolicyError("vLLM returned no prompt log-probs for a scoring request (prompt_logprobs=0?)")
    return [_logprob_of(plp[j], ids[j]) for j in range(prompt_len, len(ids))]


# ----------------------------------------------------------------------------------------------
# Weight sync
# ----------------------------------------------------------------------------------------------
def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "merge_adapter")


def hf_weight_name(name: str) -> str:
    """A parameter name as a plain transformers checkpoint spells it (peft prefixes removed)."""
    for prefix in ("base_model.model.",):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name.replace(".base_layer.", ".")


@contextmanager
def merged_weights(model: Any) -> Iterator[Iterator[tuple[str, Any]]]:
    """Yield ``(name, tensor)`` pairs of the model's full weights, LoRA adapters merged in.

    The merged weight of a LoRA layer, ``W + scaling * B @ A``, is computed per layer as the pairs
    are consumed (one layer's copy at a time); the trainer's model is never modified, because an
    in-place merge and unmerge would not restore the base weights bit for bit and would drift
    over thousands of syncs.
    """
    lora_layers: dict[str, Any] = {}
    if _is_peft(model):
        from peft.tuners.lora import LoraLayer

        lora_layers = {f"{name}.base_layer.weight": module for name, module in model.named_modules()
                       if isinstance(module, LoraLayer)}

    def pairs() -> Iterator[tuple[str, Any]]:
        for name, tensor in model.state_dict().items():
            if lora_layers and "lora_" in name:
                continue
            tensor = tensor.detach()
            layer = lora_layers.get(name)
            if layer is not None and not getattr(layer, "merged", False):
                for adapter in layer.active_adapters:
                    if adapter in layer.lora_A:
                        tensor = tensor + layer.get_delta_weight(adapter).detach().to(tensor.dtype)
            yield hf_weight_name(name), tensor

    yield pairs()


def engine_model(engine: Any) -> Any:
    """The model object inside an in-process vLLM engine (has ``load_weights``)."""
    for path in ENGINE_MODEL_PATHS:
        obj = engine
        try:
            for attr in path:
                obj = getattr(obj, attr)
        except AttributeError:
            continue
        if hasattr(obj, "load_weights"):
            return obj
    raise PolicyError("cannot reach the model inside the vLLM engine for weight sync; run the engine in this "
                      "process (VLLM_ENABLE_V1_MULTIPROCESSING=0) with tensor_parallel_size 1")


# ----------------------------------------------------------------------------------------------
# The back end
# ----------------------------------------------------------------------------------------------
class VLLMPolicy(Policy):
    """vLLM for sampling, the trainer's torch model (an ``HFPolicy``) for training log-probs."""

    backend = "vllm"
    supports_training = True
    supports_scoring = True

    def __init__(self, trainer: Any, *, engine: Any, vllm_module: Any, sleep_level: int = 1,
                 sleep_enabled: bool = True, model_name: str = ""):
        self.trainer = trainer
        self.tokenizer = trainer.tokenizer
        self.engine = engine
        self.vllm = vllm_module
        self.model_name = model_name
        self.sleep_level = sleep_level if sleep_enabled else 0
        self.asleep_tags: set[str] = set()       # memory the engine has released (sleep mode)
        self.weight_syncs = 0

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def create(cls, trainer: Any, cfg: Any, *, seed: int = 0) -> VLLMPolicy:
        """Start an engine for ``cfg`` (a PolicyConfig) and load the trainer's current weights into it."""
        vllm = import_vllm()
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"policy.backend = 'vllm' needs a CUDA GPU; none is visible ({INSTALL_VLLM})")
        if cfg.vllm.tensor_parallel_size != 1:
            raise ConfigError("policy.vllm.tensor_parallel_size > 1 is not supported by the in-process weight "
                              "sync; use 1")
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        folder = model_folder(cfg.model, trainer)
        engine = vllm.LLM(**engine_kwargs(cfg, folder, seed))
        policy = cls(trainer, engine=engine, vllm_module=vllm, sleep_level=cfg.vllm.sleep_level,
                     sleep_enabled=cfg.vllm.enable_sleep_mode, model_name=cfg.model)
        policy.sync_weights()
        return policy

    def info(self) -> PolicyInfo:
        return PolicyInfo(self.backend, self.model_name, {"vllm": getattr(self.vllm, "__version__", "?"),
                                                          "weight_syncs": self.weight_syncs})

    # -- sleep / wake ---------------------------------------------------------------------------
    def before_rollout(self) -> None:
        self._wake()

    def after_rollout(self) -> None:
        if self.sleep_level > 0 and not self.asleep_tags:
            self.engine.sleep(level=self.sleep_level)
            self.asleep_tags = {"weights", "kv_cache"}

    def _wake(self, tags: Sequence[str] = ("weights", "kv_cache")) -> None:
        """Wake the released memory in ``tags``, weights before the KV cache (less peak memory).

        Level 2 sleep discards the weights, so waking them reloads the trainer's weights.
        """
        for tag in tags:
            if tag in self.asleep_tags:
                self.engine.wake_up(tags=[tag])
                self.asleep_tags.discard(tag)
                if tag == "weights" and self.sleep_level == 2:
                    self._load_trainer_weights()

    # -- weight sync ----------------------------------------------------------------------------
    def on_weights_updated(self) -> None:
        self.sync_weights()

    def sync_weights(self) -> None:
        """Copy the trainer's current weights into the engine (in memory) and drop cached prefixes.

        A sleeping engine wakes its weights only; the KV cache wakes before the next generation.
        """
        if "weights" in self.asleep_tags:
            self.engine.wake_up(tags=["weights"])
            self.asleep_tags.discard("weights")
        self._load_trainer_weights()

    def _load_trainer_weights(self) -> None:
        target = engine_model(self.engine)
        with merged_weights(self.trainer.model) as pairs:
            target.load_weights(pairs)
        self.engine.reset_prefix_cache()
        self.weight_syncs += 1

    # -- sampling -------------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams) -> list[Completion]:
        self._wake()
        prompts = [token_prompt(r.prompt_ids) for r in requests]
        sps = [self.vllm.SamplingParams(**sampling_params_kwargs(params, r.seed)) for r in requests]
        outputs = self.engine.generate(prompts, sampling_params=sps, use_tqdm=False)
        if len(outputs) != len(requests):
            raise PolicyError(f"vLLM returned {len(outputs)} outputs for {len(requests)} prompts")
        return [completion_from_output(o) for o in outputs]

    def score(self, prompt_ids: Sequence[Sequence[int]],
              candidates: Sequence[Sequence[Sequence[int]]]) -> list[CandidateScores]:
        self._wake()
        flat = [(p, c) for p, cands in enumerate(candidates) for c in range(len(cands))]
        prompts = [token_prompt(list(prompt_ids[p]) + list(candidates[p][c])) for p, c in flat]
        sp = self.vllm.SamplingParams(**score_params_kwargs())
        outputs = self.engine.generate(prompts, sampling_params=sp, use_tqdm=False)
        per: list[list[list[float]]] = [[[] for _ in cands] for cands in candidates]
        for (p, c), out in zip(flat, outputs):
            per[p][c] = candidate_logprobs_from_output(out, len(prompt_ids[p]))
        return [CandidateScores([list(c) for c in candidates[p]], per[p]) for p in range(len(candidates))]

    # -- training (the trainer's torch model) ------------------------------------------------------
    def logprobs(self, prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]], *,
                 grad: bool = False, with_entropy: bool = False) -> TokenLogProbs:
        return self.trainer.logprobs(prompt_ids, response_ids, grad=grad, with_entropy=with_entropy)

    def candidate_logprobs(self, prompt_ids: Sequence[Sequence[int]],
                           candidates: Sequence[Sequence[Sequence[int]]], chosen: Sequence[int], *,
                           temperature: float, grad: bool = False) -> Any:
        return self.trainer.candidate_logprobs(prompt_ids, candidates, chosen, temperature=temperature, grad=grad)

    def candidate_log_softmax(self, prompt_ids: Sequence[Sequence[int]],
                              candidates: Sequence[Sequence[Sequence[int]]], *, temperature: float,
                              grad: bool = False) -> list[Any]:
        return self.trainer.candidate_log_softmax(prompt_ids, candidates, temperature=temperature, grad=grad)

    def close(self) -> None:
        self.engine = None


def engine_kwargs(cfg: Any, folder: str, seed: int) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM`` for a PolicyConfig."""
    v = cfg.vllm
    dtype = "bfloat16" if cfg.dtype == "auto" else cfg.dtype
    kwargs: dict[str, Any] = {
        "model": folder, "tokenizer": folder, "dtype": dtype, "seed": int(seed),
        "gpu_memory_utilization": v.gpu_memory_utilization, "tensor_parallel_size": v.tensor_parallel_size,
        "enforce_eager": v.enforce_eager, "enable_sleep_mode": v.enable_sleep_mode,
        "enable_prefix_caching": v.enable_prefix_caching, "logprobs_mode": "raw_logprobs",
    }
    if v.max_model_len is not None:
        kwargs["max_model_len"] = v.max_model_len
    else:
        kwargs["max_model_len"] = cfg.max_prompt_tokens + cfg.max_new_tokens
    return kwargs


def model_folder(name: str, trainer: Any) -> str:
    """A transformers folder vLLM can open for ``name`` (architecture and tokenizer; the weights are
    replaced by the trainer's right after start-up)."""
    from siri_bench.models import _converted_cache, resolve_model

    source = resolve_model(name)
    if source.kind in ("folder", "hub"):
        return source.path
    if source.kind == "gguf":
        cached = _converted_cache(source)
        if cached is not None and (cached / "config.json").exists():
            return str(cached)
    # tiny model, or GGUF without a converted cache: write the trainer's model once
    folder = Path(tempfile.mkdtemp(prefix="siri-bench-vllm-model-"))
    if source.kind == "gguf":
        log.info("writing %s as a transformers folder for vLLM: %s", name, folder)
    trainer.save_pretrained(folder)
    if not (folder / "config.json").exists():
        raise ModelNotFoundError(f"could not prepare a transformers folder of {name!r} for vLLM")
    return str(folder)

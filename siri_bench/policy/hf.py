"""The ``hf`` back end: a transformers causal LM on CPU or GPU.

Generation is a hand-written decode loop rather than ``model.generate`` because the rollout
needs three things ``generate`` does not give together: a random stream per request (so an
episode's tokens depend on its own seed, not on which other episodes share the batch), the raw
log-prob of every sampled token (see :mod:`siri_bench.policy.base`), and rows that leave the batch
as soon as they finish. Prompts are left-padded; position ids count real tokens only, so a
padded row computes what it would compute alone.

:meth:`HFPolicy.logprobs` recomputes log-probs with one left-padded forward pass over prompt plus
response (the same layout as generation), keeping only the logits of response positions.
:meth:`HFPolicy.score` scores candidate actions: one forward pass over the prompts builds the KV
cache, which is then shared by all of a prompt's candidates (copied per candidate row in chunks of
``score_chunk_size``), so the prompt is encoded once however many candidates it has.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from siri_bench.policy.base import (
    CandidateScores,
    Completion,
    GenerationRequest,
    Policy,
    PolicyInfo,
    SamplingParams,
    TokenLogProbs,
)

log = logging.getLogger(__name__)


def _chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


def eos_token_ids(model: Any, tokenizer: Any) -> set[int]:
    """Token ids that end a response: the tokenizer's EOS and the generation config's."""
    ids: set[int] = set()
    for value in (getattr(tokenizer, "eos_token_id", None),
                  getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


def sample_token(logits: Any, params: SamplingParams, generator: Any) -> int:
    """Pick the next token from one row of raw logits (greedy, temperature, nucleus)."""
    import torch

    if params.greedy:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        before = torch.cumsum(sorted_p, dim=-1) - sorted_p        # mass of strictly more likely tokens
        sorted_p = torch.where(before < params.top_p, sorted_p, torch.zeros_like(sorted_p))
        probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
        probs = probs / probs.sum()
    return int(torch.multinomial(probs, 1, generator=generator))


class HFPolicy(Policy):
    """A transformers causal LM (optionally with LoRA adapters) as a policy."""

    backend = "hf"
    supports_training = True
    supports_scoring = True

    def __init__(self, model: Any, tokenizer: Any, *, model_name: str = "", generation_batch_size: int = 16,
                 score_chunk_size: int = 32):
        self.model = model
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.generation_batch_size = generation_batch_size
        self.score_chunk_size = score_chunk_size
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.eos_ids = eos_token_ids(model, tokenizer)
        self._cache_kwarg = _cache_keyword(model)
        self._keep_kwarg = _supports_logits_to_keep(model)
        #: dtype of autocast forward passes (set by ``build_policy`` for mixed-precision training)
        self.autocast_dtype: Any = None

    # -- basics -------------------------------------------------------------------------------
    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def info(self) -> PolicyInfo:
        return PolicyInfo(self.backend, self.model_name, {"device": str(self.device),
                                                          "dtype": str(next(self.model.parameters()).dtype)})

    def _forward(self, input_ids: Any, attention_mask: Any, position_ids: Any, cache: Any = None,
                 keep: int | None = None) -> Any:
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask,
                                  "position_ids": position_ids, "use_cache": cache is not None}
        if cache is not None:
            kwargs[self._cache_kwarg] = cache
        if keep is not None and self._keep_kwarg:
            kwargs["logits_to_keep"] = keep
        with self._autocast():
            logits = self.model(**kwargs).logits
        return logits[:, -keep:] if keep is not None and logits.shape[1] > keep else logits

    def _autocast(self) -> Any:
        """Mixed precision: forward passes in ``autocast_dtype`` (bf16 on GPU for training), weights
        and optimizer state in their own (fp32) dtype. None: plain forward passes."""
        if self.autocast_dtype is None:
            return nullcontext()
        import torch

        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def _left_pad(self, seqs: Sequence[Sequence[int]]) -> tuple[Any, Any, Any]:
        import torch

        length = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), length), dtype=torch.long)
        for i, s in enumerate(seqs):
            if s:
                ids[i, length - len(s):] = torch.tensor(list(s), dtype=torch.long)
                mask[i, length - len(s):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        dev = self.device
        return ids.to(dev), mask.to(dev), positions.to(dev)

    # -- generation ---------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams) -> list[Completion]:
        out: list[Completion] = []
        for rows in _chunks(len(requests), self.generation_batch_size):
            out.extend(self._generate_batch([requests[i] for i in rows], params))
        return out

    def _generate_batch(self, requests: Sequence[GenerationRequest], params: SamplingParams) -> list[Completion]:
        import torch
        from transformers import DynamicCache

        n = len(requests)
        responses: list[list[int]] = [[] for _ in range(n)]
        logps: list[list[float]] = [[] for _ in range(n)]
        finish: list[str | None] = [None] * n
        if params.max_new_tokens <= 0:
            return [Completion([], [], "", "length") for _ in range(n)]
        dev = self.device
        generators = [torch.Generator(device=dev).manual_seed(int(r.seed) % (2**63)) for r in requests]
        with torch.no_grad():
            ids, mask, positions = self._left_pad([r.prompt_ids for r in requests])
            cache = DynamicCache()
            logits = self._forward(ids, mask, positions, cache=cache, keep=1)[:, -1].float()
            next_pos = positions[:, -1] + 1
            active = list(range(n))
            for t in range(params.max_new_tokens):
                logp = torch.log_softmax(logits, dim=-1)
                tokens = []
                for k, row in enumerate(active):
                    tok = sample_token(logits[k], params, generators[row])
                    tokens.append(tok)
                    responses[row].append(tok)
                    logps[row].append(float(logp[k, tok]))
                    if tok in self.eos_ids or self._hit_stop(responses[row], params.stop):
                        finish[row] = "stop"
                keep = [k for k, row in enumerate(active) if finish[row] is None]
                if not keep or t == params.max_new_tokens - 1:
                    break
                step_ids = torch.tensor(tokens, dtype=torch.long, device=dev)
                if len(keep) < len(active):
                    index = torch.tensor(keep, dtype=torch.long, device=dev)
                    cache.reorder_cache(index)
                    mask, next_pos, step_ids = mask[index], next_pos[index], step_ids[index]
                    active = [active[k] for k in keep]
                mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype, device=dev)], dim=1)
                logits = self._forward(step_ids[:, None], mask, next_pos[:, None], cache=cache, keep=1)[:, -1].float()
                next_pos = next_pos + 1
        return [Completion(responses[i], logps[i], self._decode(responses[i]), finish[i] or "length",
                           prompt_tokens=len(requests[i].prompt_ids)) for i in range(n)]

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def _hit_stop(self, ids: list[int], stop: Sequence[str]) -> bool:
        if not stop:
            return False
        # special tokens are kept so that stop strings such as "</action>" match tag tokens too
        tail = self.tokenizer.decode(ids[-32:], skip_special_tokens=False)
        return any(s in tail for s in stop)

    # -- training log-probs -------------------------------------------------------------------
    def logprobs(self, prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]], *,
                 grad: bool = False, with_entropy: bool = False) -> TokenLogProbs:
        import torch

        if len(prompt_ids) != len(response_ids):
            raise ValueError("prompt_ids and response_ids must have the same length")
        lengths = [len(r) for r in response_ids]
        width = max(lengths, default=0)
        n = len(prompt_ids)
        if n == 0 or width == 0:
            empty = torch.zeros((n, width), dtype=torch.float32, device=self.device)
            return TokenLogProbs(empty, empty.bool(), empty.clone() if with_entropy else None)
        ctx = torch.enable_grad() if grad else torch.no_grad()
        with ctx:
            ids, mask, positions = self._left_pad([list(p) + list(r) for p, r in zip(prompt_ids, response_ids)])
            logits = self._forward(ids, mask, positions, keep=width + 1)[:, :-1].float()   # [B, W, V]
            logp_all = torch.log_softmax(logits, dim=-1)
            targets = ids[:, -width:]
            right = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)                 # right-aligned
            cols = torch.arange(width, device=ids.device)
            lens = torch.tensor(lengths, device=ids.device)
            # row i's response fills the last lens[i] columns; move it to the first lens[i]
            src = (cols[None, :] + (width - lens)[:, None]).clamp(max=width - 1)
            out_mask = cols[None, :] < lens[:, None]
            values = right.gather(1, src) * out_mask
            entropy = None
            if with_entropy:
                ent = -(logp_all.exp() * logp_all).sum(-1)
                entropy = ent.gather(1, src) * out_mask
        return TokenLogProbs(values, out_mask, entropy)

    # -- score mode ---------------------------------------------------------------------------
    def score(self, prompt_ids: Sequence[Sequence[int]],
              candidates: Sequence[Sequence[Sequence[int]]]) -> list[CandidateScores]:
        out: list[CandidateScores] = []
        for rows in _chunks(len(prompt_ids), self.generation_batch_size):
            tensors = self._candidate_token_logprobs([prompt_ids[i] for i in rows], [candidates[i] for i in rows],
                                                     grad=False)
            for i, per_cand in zip(rows, tensors):
                out.append(CandidateScores([list(c) for c in candidates[i]],
                                           [t.tolist() for t in per_cand]))
        return out

    def candidate_logprobs(self, prompt_ids: Sequence[Sequence[int]],
                           candidates: Sequence[Sequence[Sequence[int]]], chosen: Sequence[int], *,
                           temperature: float, grad: bool = False) -> Any:
        import torch

        dists = self.candidate_log_softmax(prompt_ids, candidates, temperature=temperature, grad=grad)
        out = [d[int(c)] for d, c in zip(dists, chosen)]
        return torch.stack(out) if out else torch.zeros(0, device=self.device)

    def candidate_log_softmax(self, prompt_ids: Sequence[Sequence[int]],
                              candidates: Sequence[Sequence[Sequence[int]]], *, temperature: float,
                              grad: bool = False) -> list[Any]:
        import torch

        ctx = torch.enable_grad() if grad else torch.no_grad()
        with ctx:
            tensors = self._candidate_token_logprobs(prompt_ids, candidates, grad=grad)
            return [torch.log_softmax(torch.stack([t.sum() for t in per_cand]) / temperature, dim=0)
                    for per_cand in tensors]

    def _candidate_token_logprobs(self, prompt_ids: Sequence[Sequence[int]],
                                  candidates: Sequence[Sequence[Sequence[int]]], *, grad: bool) -> list[list[Any]]:
        """Token log-probs of every candidate of every prompt (one prefill, shared KV per prompt)."""
        import torch
        from transformers import DynamicCache

        for i, cands in enumerate(candidates):
            if not cands or any(len(c) == 0 for c in cands):
                raise ValueError(f"prompt {i}: candidates must be non-empty token sequences")
        ctx = nullcontext() if grad else torch.no_grad()
        with ctx:
            ids, mask, positions = self._left_pad(prompt_ids)
            base = DynamicCache()
            first = torch.log_softmax(self._forward(ids, mask, positions, cache=base, keep=1)[:, -1].float(), dim=-1)
            prompt_len = positions[:, -1] + 1
            flat = [(p, c) for p, cands in enumerate(candidates) for c in range(len(cands))]
            result: list[list[Any]] = [[None] * len(c) for c in candidates]
            dev = ids.device
            for rows in _chunks(len(flat), self.score_chunk_size):
                owner = torch.tensor([flat[r][0] for r in rows], dtype=torch.long, device=dev)
                seqs = [list(candidates[flat[r][0]][flat[r][1]]) for r in rows]
                width = max(len(s) for s in seqs)
                cand_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long, device=dev)
                cand_mask = torch.zeros((len(rows), width), dtype=mask.dtype, device=dev)
                for k, s in enumerate(seqs):
                    cand_ids[k, :len(s)] = torch.tensor(s, dtype=torch.long, device=dev)
                    cand_mask[k, :len(s)] = 1
                token_lp = first[owner].gather(1, cand_ids[:, :1])                       # first tokens
                if width > 1:
                    cache = DynamicCache()
                    for layer_idx, layer in enumerate(base.layers):
                        cache.update(layer.keys.index_select(0, owner), layer.values.index_select(0, owner),
                                     layer_idx)
                    full_mask = torch.cat([mask[owner], cand_mask], dim=1)
                    pos = prompt_len[owner][:, None] + torch.arange(width, device=dev)[None, :]
                    logits = self._forward(cand_ids[:, :-1], full_mask[:, :-1], pos[:, :-1], cache=cache).float()
                    rest = torch.log_softmax(logits, dim=-1).gather(-1, cand_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
                    token_lp = torch.cat([token_lp, rest], dim=1)
                for k, r in enumerate(rows):
                    p, c = flat[r]
                    result[p][c] = token_lp[k, :len(seqs[k])]
            return result

    # -- weights ------------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path) -> None:
        """Save the model (or its LoRA adapter) and tokenizer in transformers format."""
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)

    def load_pretrained(self, folder: str | Path) -> None:
        """Load weights saved by :meth:`save_pretrained` into the current model (same architecture)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        files = sorted(folder.glob("*.safetensors"))
        if not files:
            from siri_bench.errors import RunStateError

            raise RunStateError(f"{folder} holds no .safetensors weights")
        if (folder / "adapter_config.json").exists():
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(self.model, load_file(str(folder / "adapter_model.safetensors")))
            return
        load_full_weights(self.model, folder)

    def parameters_digest(self) -> str:
        """A short hash of the current weights (tests and checkpoint checks)."""
        import hashlib

        h = hashlib.sha256()
        for name, p in sorted(self.model.state_dict().items()):
            h.update(name.encode())
            h.update(np.ascontiguousarray(p.detach().float().cpu().numpy()).tobytes())
        return h.hexdigest()[:16]


def load_full_weights(model: Any, folder: str | Path) -> None:
    """Load the ``*.safetensors`` weights of a transformers folder into ``model`` (same architecture;
    a tied ``lm_head`` may be absent)."""
    from safetensors.torch import load_file

    from siri_bench.errors import RunStateError

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise RunStateError(f"{folder} holds no .safetensors weights")
    state: dict[str, Any] = {}
    for f in files:
        state.update(load_file(str(f)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    real_missing = [k for k in missing if not k.endswith("lm_head.weight")]
    if real_missing or unexpected:
        raise RunStateError(f"{folder}: weights do not fit the model (missing {real_missing[:3]}, "
                            f"unexpected {list(unexpected)[:3]})")


def load_initial_weights(model: Any, folder: str | Path) -> Any:
    """``model`` (a plain transformers model, no adapters yet) initialised from a saved policy
    folder: full weights are loaded in place; a LoRA adapter is applied and merged into the weights
    (so new adapters, and a reference policy with adapters disabled, start from it)."""
    folder = Path(folder)
    if (folder / "adapter_config.json").exists():
        from peft import PeftModel

        return PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    load_full_weights(model, folder)
    return model


def _base_model(model: Any) -> Any:
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def _cache_keyword(model: Any) -> str:
    """transformers 5.x renamed ``past_key_values`` to ``cache``; use whichever the model takes."""
    params = inspect.signature(_base_model(model).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _supports_logits_to_keep(model: Any) -> bool:
    return "logits_to_keep" in inspect.signature(_base_model(model).forward).parameters

"""The policy interface every back end implements, and the records it returns.

A policy turns prompts (token ids, plus chat messages for HTTP back ends) into completions, and,
for training, recomputes log-probabilities under its current weights.

**Which distribution the log-probs are under.** Every log-prob a back end returns or recomputes is
``log pi_theta(y_t | x, y_<t) = log_softmax(logits_t)[y_t]``: the model's own next-token
distribution, computed in float32 from the raw logits, at temperature 1, with no top-p/top-k
truncation, no repetition penalty and no other logits processing. Sampling may use a temperature
or top-p; the recorded log-probs are still those of the unmodified model, which is the quantity
:meth:`Policy.logprobs` recomputes (so the PPO ratio of an unchanged model is exactly 1). vLLM
returns the same quantity with ``logprobs_mode="raw_logprobs"`` (its default).

**Score mode** (GLAM-style): the policy scores every candidate action ``a`` as a continuation of the
prompt, ``s(a) = sum_t log pi_theta(a_t | x, a_<t)``; the action distribution is
``p(a) = softmax(s / tau)`` over the candidates (``tau = policy.score_temperature``); the training
log-prob of a step is ``log p(chosen)``, recomputed under the current weights by
:meth:`Policy.candidate_logprobs`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SamplingParams:
    """How to decode: temperature 0 means greedy (argmax)."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class GenerationRequest:
    """One prompt to complete."""

    prompt_ids: list[int]
    seed: int                                         # per request: same seed, same tokens
    messages: list[dict[str, str]] | None = None      # the chat (HTTP back ends send this)
    response_prefix: str = ""                          # text already forced after the generation prompt


@dataclass
class Completion:
    """One completion: token ids, their log-probs (see the module docstring) and the text."""

    response_ids: list[int]
    logprobs: list[float]
    text: str                                         # decoded response without special tokens
    finish_reason: str = "stop"                       # "stop" (EOS or stop string), "length", "error"
    error: str | None = None                          # set when the back end failed on this request
    prompt_tokens: int | None = None                  # as counted by the back end (HTTP usage)
    completion_tokens: int | None = None              # as counted by the back end (HTTP usage)

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass
class CandidateScores:
    """Per-candidate token log-probs of one prompt's candidate continuations."""

    token_ids: list[list[int]]
    token_logprobs: list[list[float]]

    @property
    def sums(self) -> np.ndarray:
        return np.array([float(np.sum(t, dtype=np.float64)) for t in self.token_logprobs], dtype=np.float64)


@dataclass
class TokenLogProbs:
    """Per-token log-probs of a batch of responses, left-aligned and padded to the longest response.

    ``values[i, j]`` is the log-prob of response token ``j`` of row ``i`` where ``mask[i, j]``; 0 in
    padding. ``entropy`` (same layout) is the entropy of the full next-token distribution.
    """

    values: Any                  # torch.Tensor [B, T] float32
    mask: Any                    # torch.Tensor [B, T] bool
    entropy: Any = None          # torch.Tensor [B, T] float32 or None

    def rows(self) -> list[Any]:
        """One 1-D tensor per row (its response length)."""
        return [self.values[i][self.mask[i]] for i in range(self.values.shape[0])]


@dataclass
class PolicyInfo:
    """Facts about a back end that runs record (e.g. whether a server honoured seeds)."""

    backend: str
    model: str
    details: dict[str, Any] = field(default_factory=dict)


class PolicyError(RuntimeError):
    """A back end failed on a request (the episode gets status ``policy_error``)."""


class Policy(ABC):
    """A language-model policy. Back ends: ``hf``, ``vllm``, ``openai`` (see :func:`build_policy`)."""

    backend: str = "base"
    tokenizer: Any = None
    #: whether :meth:`logprobs` and :meth:`candidate_logprobs` work (False for HTTP back ends)
    supports_training: bool = False
    #: whether :meth:`score` works
    supports_scoring: bool = False

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams) -> list[Completion]:
        """Complete every request (one batched call); the i-th completion answers the i-th request."""

    def score(self, prompt_ids: Sequence[Sequence[int]],
              candidates: Sequence[Sequence[Sequence[int]]]) -> list[CandidateScores]:
        """Token log-probs of each prompt's candidate continuations (score mode)."""
        raise NotImplementedError(f"the {self.backend} back end cannot score candidate actions")

    def logprobs(self, prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]], *,
                 grad: bool = False, with_entropy: bool = False) -> TokenLogProbs:
        """Recompute per-token log-probs of responses under the current weights."""
        raise NotImplementedError(f"the {self.backend} back end cannot compute training log-probs")

    def candidate_logprobs(self, prompt_ids: Sequence[Sequence[int]],
                           candidates: Sequence[Sequence[Sequence[int]]], chosen: Sequence[int], *,
                           temperature: float, grad: bool = False) -> Any:
        """``log softmax(s / temperature)[chosen]`` per prompt under the current weights (tensor [N])."""
        raise NotImplementedError(f"the {self.backend} back end cannot compute training log-probs")

    def candidate_log_softmax(self, prompt_ids: Sequence[Sequence[int]],
                              candidates: Sequence[Sequence[Sequence[int]]], *, temperature: float,
                              grad: bool = False) -> list[Any]:
        """``log softmax(s / temperature)`` over each prompt's candidates (one tensor per prompt)."""
        raise NotImplementedError(f"the {self.backend} back end cannot compute training log-probs")

    def on_weights_updated(self) -> None:
        """Called by the trainer after each optimizer step (vLLM copies the new weights)."""
        return None

    def before_rollout(self) -> None:
        """Called before a rollout or evaluation round (vLLM wakes up)."""
        return None

    def after_rollout(self) -> None:
        """Called after a rollout or evaluation round (vLLM may sleep to free GPU memory)."""
        return None

    def info(self) -> PolicyInfo:
        return PolicyInfo(self.backend, getattr(self, "model_name", ""))

    def close(self) -> None:
        """Release resources (engines, HTTP clients)."""
        return None

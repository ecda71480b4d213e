"""The ``openai`` back end: any OpenAI-compatible chat endpoint over HTTP (httpx).

Used for evaluation-only baselines and as an external skill writer; it cannot train (no weights)
and cannot score candidates (``/chat/completions`` has no prompt log-probs), so it supports
``action_mode: generate`` only. Each request sends the step's chat (one user message) with
``temperature``, ``top_p``, ``max_tokens``, ``stop``, ``seed`` and ``logprobs: true``; failures are
retried ``max_retries`` times with exponential back-off on timeouts, connection errors, 429 and 5xx
responses, then reported as a failed completion (the episode's status becomes ``policy_error``,
or ``context_overflow`` when the server says the prompt is too long).

**Seeds.** The API documents ``seed`` as best effort. With ``policy.openai.check_seed`` the back end
probes the server once: the same sampled request twice with one seed, once with another. The
result, recorded in the run (``PolicyInfo.details``), is ``seed_honoured`` (same seed gave the same
text) and ``seed_changes_output`` (a different seed gave a different text).

Token ids: the server does not return ids; when the model's tokenizer is available locally, the
response text is tokenized with it for token counts (``response_ids``), and the server's per-token
log-probs are kept only when they line up with those ids.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from siri_bench.policy.base import Completion, GenerationRequest, Policy, PolicyInfo, SamplingParams

log = logging.getLogger(__name__)

_CONTEXT_ERRORS = ("context length", "context_length", "maximum context", "too long", "max_model_len")
_PROBE_MESSAGES = [{"role": "user", "content": "Write one random word."}]


class ContextOverflowError(RuntimeError):
    """The server refused a prompt as too long for the model."""


class OpenAIPolicy(Policy):
    """A chat-completions endpoint as a policy (generate mode, evaluation only)."""

    backend = "openai"
    supports_training = False
    supports_scoring = False

    def __init__(self, cfg: Any, *, tokenizer: Any = None, model_name: str = "", concurrency: int = 8,
                 client: Any = None):
        import httpx

        self.cfg = cfg
        self.tokenizer = tokenizer
        self.model_name = model_name or cfg.model
        self.concurrency = max(1, concurrency)
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(cfg.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.client = client or httpx.Client(base_url=cfg.base_url.rstrip("/"), headers=headers,
                                             timeout=cfg.timeout_s)
        self.seed_check: dict[str, Any] = {}

    # -- requests -------------------------------------------------------------------------------
    def request_body(self, messages: list[dict[str, str]], params: SamplingParams, seed: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.cfg.model, "messages": messages, "max_tokens": int(params.max_new_tokens),
            "temperature": 0.0 if params.greedy else float(params.temperature),
            "top_p": 1.0 if params.greedy else float(params.top_p), "seed": int(seed) % (2**31),
            "logprobs": True, "n": 1,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        return body

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        delay = 0.5
        last = "no attempt"
        for attempt in range(self.cfg.max_retries + 1):
            try:
                resp = self.client.post("/chat/completions", json=body)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    return resp.json()
                text = resp.text[:300]
                if resp.status_code == 400 and any(k in text.lower() for k in _CONTEXT_ERRORS):
                    raise ContextOverflowError(text)
                last = f"HTTP {resp.status_code}: {text}"
                if resp.status_code != 429 and resp.status_code < 500:
                    break
            if attempt < self.cfg.max_retries:
                time.sleep(delay)
                delay *= 2
        raise RuntimeError(last)

    def _complete(self, request: GenerationRequest, params: SamplingParams) -> Completion:
        messages = request.messages
        if messages is None:
            if self.tokenizer is None:
                return Completion([], [], "", "error", error="request has no chat messages")
            messages = [{"role": "user", "content": self.tokenizer.decode(request.prompt_ids)}]
        try:
            data = self._post(self.request_body(messages, params, request.seed))
        except ContextOverflowError as exc:
            return Completion([], [], "", "error", error=f"context_overflow: {exc}")
        except Exception as exc:  # noqa: BLE001 - any failure of the endpoint is a policy error
            return Completion([], [], "", "error", error=str(exc))
        return self.completion_from_response(data)

    def completion_from_response(self, data: dict[str, Any]) -> Completion:
        """A :class:`Completion` from a chat-completions response body."""
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            return Completion([], [], "", "error", error=f"malformed response: {json.dumps(data)[:200]}")
        server_lps = [float(t["logprob"]) for t in ((choice.get("logprobs") or {}).get("content") or [])]
        ids = list(self.tokenizer(text, add_special_tokens=False).input_ids) if self.tokenizer is not None else []
        logps = server_lps if len(server_lps) == len(ids) else []
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        usage = data.get("usage") or {}
        return Completion(ids, logps, text, finish, prompt_tokens=usage.get("prompt_tokens"),
                          completion_tokens=usage.get("completion_tokens"))

    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams) -> list[Completion]:
        if self.cfg.check_seed and not self.seed_check:
            self.seed_check = self.probe_seed()
        if len(requests) <= 1 or self.concurrency == 1:
            return [self._complete(r, params) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(lambda r: self._complete(r, params), requests))

    # -- seeds ----------------------------------------------------------------------------------
    def probe_seed(self) -> dict[str, Any]:
        """Ask the same sampled question with seeds a, a, b; compare the answers."""
        params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=16)
        try:
            a1 = self._post(self.request_body(_PROBE_MESSAGES, params, 1234))["choices"][0]["message"]["content"]
            a2 = self._post(self.request_body(_PROBE_MESSAGES, params, 1234))["choices"][0]["message"]["content"]
            b = self._post(self.request_body(_PROBE_MESSAGES, params, 98765))["choices"][0]["message"]["content"]
        except Exception as exc:  # noqa: BLE001 - the probe must never stop a run
            log.warning("could not probe whether %s honours seeds: %s", self.cfg.base_url, exc)
            return {"seed_honoured": None, "seed_changes_output": None, "probe_error": str(exc)}
        result = {"seed_honoured": a1 == a2, "seed_changes_output": a1 != b}
        if not result["seed_honoured"]:
            log.warning("the endpoint %s does not honour seeds: episodes are not reproducible", self.cfg.base_url)
        return result

    def info(self) -> PolicyInfo:
        return PolicyInfo(self.backend, self.model_name, {"base_url": self.cfg.base_url,
                                                          "server_model": self.cfg.model, **self.seed_check})

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001
            pass

"""Writers: the model that writes reflections (Reflexion), procedural memories (MemRL) and skills
(SkillRL, D2Skill) from episodes.

A writer turns prompts into texts; what the text must look like is the caller's business (each
algorithm parses it with :mod:`algorithms.model_output` and drops what does not parse, counting
it). Kinds (``writer.kind`` in an algorithm's config):

* ``policy`` (default) - the run's own policy, with its current weights: self-written
  reflections and skills, no outside model. A tiny random model writes garbage, which the
  parsers drop and count; that is the honest result of a self-writer that cannot write.
* ``openai`` - any OpenAI-compatible chat endpoint (``writer.openai``), e.g. a large model
  served with vLLM: the "skills from a stronger model" setting of SkillRL and D2Skill.
* ``template`` - a fixed text per purpose with ``{field}`` slots filled from the request; for
  tests and for runs that must not depend on a model's writing.

Every output carries its token counts, so the inference cost of writing (a Reflexion run
writes a reflection after each failed trial) is reported next to the acting cost.
"""

from __future__ import annotations

import logging
import string
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator

from siri_bench.config import OpenAIConfig, StrictModel
from siri_bench.errors import ConfigError

log = logging.getLogger(__name__)

#: what writers are asked to write, by algorithm: reflexion, memrl, skillrl (bank, update), d2skill
PURPOSES = ("reflection", "memory", "skills", "skill_update", "d2skill")


class WriterConfig(StrictModel):
    """Which model writes, and how it decodes."""

    kind: Literal["policy", "openai", "template"] = Field(
        "policy", description="policy: the run's own policy; openai: an OpenAI-compatible endpoint; "
        "template: fixed texts (tests)")
    max_new_tokens: int = Field(256, ge=1, description="tokens the writer may produce per request")
    temperature: float = Field(0.0, ge=0.0, description="decoding temperature (0: greedy)")
    max_prompt_tokens: int = Field(4096, ge=16, description="longer writer prompts are not sent (counted "
                                   "as writer errors)")
    openai: OpenAIConfig = Field(default_factory=OpenAIConfig, description="endpoint of kind openai")
    templates: dict[str, str] = Field(default_factory=dict, description="kind template: text per purpose "
                                      "(reflection, memory, skills, skill_update, d2skill) with {field} slots")

    @field_validator("templates")
    @classmethod
    def _known_purposes_and_valid_slots(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(PURPOSES))
        if unknown:
            raise ValueError(f"unknown purpose(s) {unknown}; use {', '.join(PURPOSES)}")
        for purpose, text in value.items():
            try:
                slots = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
            except ValueError as exc:
                raise ValueError(f"the {purpose!r} template is not a format string ({exc}); write literal braces "
                                 "as {{ and }}") from None
            bad = [name for name in slots if not name.isidentifier()]
            if bad:
                raise ValueError(f"the {purpose!r} template has slots {bad}; slots are names like {{task}} "
                                 "(literal braces: {{ and }})")
        return value


@dataclass(frozen=True)
class WriterRequest:
    """One text to write."""

    purpose: str                                  # "reflection", "memory", "skills", ...
    prompt: str                                   # the user message sent to a model writer
    fields: Mapping[str, str] = field(default_factory=dict)   # named parts (template writer slots)
    seed: int = 0


@dataclass
class WriterOutput:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


@dataclass
class WriterStats:
    """How many writer outputs were used, dropped as unparseable, or failed (counted per run)."""

    requests: int = 0
    parsed: int = 0
    unparseable: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add_output(self, out: WriterOutput) -> None:
        self.requests += 1
        self.prompt_tokens += out.prompt_tokens
        self.completion_tokens += out.completion_tokens
        if out.error is not None:
            self.errors += 1

    def as_dict(self, prefix: str = "writer") -> dict[str, int]:
        return {f"{prefix}/{k}": int(v) for k, v in self.__dict__.items()}

    def load(self, state: Mapping[str, Any], prefix: str = "writer") -> None:
        for key in self.__dict__:
            setattr(self, key, int(state.get(f"{prefix}/{key}", 0)))


class Writer(ABC):
    kind: str = "base"

    @abstractmethod
    def write(self, requests: Sequence[WriterRequest]) -> list[WriterOutput]:
        """One output per request, in order; a failing request gives an output with ``error``."""

    def close(self) -> None:
        return None


class PolicyWriter(Writer):
    """Writes with a :class:`~siri_bench.policy.base.Policy` (the run's own, or an HTTP one)."""

    kind = "policy"

    def __init__(self, policy: Any, cfg: WriterConfig):
        self.policy = policy
        self.cfg = cfg

    def _encode(self, text: str) -> list[int]:
        tok = getattr(self.policy, "tokenizer", None)
        if tok is None:
            return []
        messages = [{"role": "user", "content": text}]
        chat = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return list(tok(chat, add_special_tokens=False).input_ids)

    def write(self, requests: Sequence[WriterRequest]) -> list[WriterOutput]:
        from siri_bench.policy.base import GenerationRequest, SamplingParams

        if not requests:
            return []
        outputs: list[WriterOutput | None] = [None] * len(requests)
        batch, index = [], []
        for i, req in enumerate(requests):
            ids = self._encode(req.prompt)
            if len(ids) > self.cfg.max_prompt_tokens:
                outputs[i] = WriterOutput("", len(ids), 0, f"context_overflow: {len(ids)} prompt tokens > "
                                          f"writer.max_prompt_tokens {self.cfg.max_prompt_tokens}")
                continue
            batch.append(GenerationRequest(ids, req.seed, [{"role": "user", "content": req.prompt}]))
            index.append(i)
        if batch:
            params = SamplingParams(self.cfg.temperature, 1.0, self.cfg.max_new_tokens)
            self.policy.before_rollout()
            try:
                completions = self.policy.generate(batch, params)
            except Exception as exc:  # noqa: BLE001 - a failing writer drops its outputs, not the run
                log.exception("writer generation failed")
                completions = None
                error = f"{type(exc).__name__}: {exc}"
            finally:
                self.policy.after_rollout()
            for k, i in enumerate(index):
                if completions is None:
                    outputs[i] = WriterOutput("", len(batch[k].prompt_ids), 0, error)
                    continue
                comp = completions[k]
                prompt_tokens = comp.prompt_tokens if comp.prompt_tokens is not None else len(batch[k].prompt_ids)
                completion_tokens = comp.completion_tokens if comp.completion_tokens is not None else len(comp.response_ids)
                outputs[i] = WriterOutput(comp.text, int(prompt_tokens), int(completion_tokens), comp.error)
        return [o if o is not None else WriterOutput("", error="no output") for o in outputs]


class OpenAIWriter(PolicyWriter):
    """Writes with an OpenAI-compatible endpoint (``writer.openai``)."""

    kind = "openai"

    def __init__(self, cfg: WriterConfig):
        from siri_bench.policy.openai import OpenAIPolicy

        super().__init__(OpenAIPolicy(cfg.openai, tokenizer=None, model_name=cfg.openai.model), cfg)

    def close(self) -> None:
        self.policy.close()


class TemplateWriter(Writer):
    """Returns a fixed text per purpose, with ``{field}`` slots filled from the request's fields.

    Its "token" counts are word counts (there is no model), so cost figures of template runs are
    only indicative."""

    kind = "template"

    def __init__(self, templates: Mapping[str, str]):
        self.templates = dict(templates)

    def write(self, requests: Sequence[WriterRequest]) -> list[WriterOutput]:
        out = []
        for req in requests:
            template = self.templates.get(req.purpose)
            if template is None:
                out.append(WriterOutput("", error=f"template writer has no text for purpose {req.purpose!r}"))
                continue
            text = template.format_map(_Slots(req.fields))
            out.append(WriterOutput(text, len(req.prompt.split()), len(text.split())))
        return out


class _Slots(dict):
    def __missing__(self, key: str) -> str:
        return ""


def build_writer(cfg: WriterConfig, run: Any = None, default_templates: Mapping[str, str] | None = None) -> Writer:
    """The writer ``cfg`` asks for; ``run`` (a RunContext) provides the policy of kind ``policy``."""
    if cfg.kind == "template":
        return TemplateWriter({**(default_templates or {}), **cfg.templates})
    if cfg.kind == "openai":
        return OpenAIWriter(cfg)
    if run is None or getattr(run, "policy", None) is None:
        raise ConfigError("writer.kind = 'policy' needs the run's policy; this algorithm was used outside a run "
                          "(give it a writer, or use writer.kind: template)")
    return PolicyWriter(run.policy, cfg)

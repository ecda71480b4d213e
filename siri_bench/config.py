"""Experiment files: YAML validated by pydantic models, with dotted ``key=value`` overrides.

An experiment file describes one experiment: the environment, the policy (model and back end),
the algorithm and its parameters, the seeds, the training schedule, the evaluation schedule and
the output folder. It may declare a ``grid`` (dotted key -> list of values, full factorial) and
``variants`` (name -> dotted overrides) that expand into several runs (see
:func:`expand_runs`). Every mistake fails before any work starts, with a message that names the
key, the bad value and what is allowed (:class:`~siri_bench.errors.ConfigError`).

Algorithm parameters are validated by the algorithm's own ``Config`` model (looked up in the
algorithm registry by ``algorithm.name``); environment keyword arguments by the env's registered
``config_model``. The resolved config of every run is saved in its run folder.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from siri_bench.errors import ConfigError


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# ----------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------
class EnvConfig(StrictModel):
    """Which environment and which task splits."""

    id: str = Field("siri_bench/ALFWorld-v0", description="registered environment id (see `siri-bench envs`)")
    train_split: str | None = Field("train", description="split that training tasks are drawn from")
    eval_split: str = Field("valid_unseen", description="split (or panel) evaluated on")
    task_types: list[str] | None = Field(None, description="restrict tasks to these task types")
    max_steps: int | None = Field(None, ge=1, description="step limit per episode (None: the env's default)")
    workers: int = Field(1, ge=1, description="environment worker processes (1: in-process)")
    worker_backend: Literal["process", "ray"] = Field("process", description="how env workers run")
    step_timeout_s: float = Field(120.0, gt=0, description="per-call timeout of step (and of reset, unless "
                                  "reset_timeout_s is set) in worker processes "
                                  "(workers > 1): a hung engine is killed, its episode ends as env_error")
    reset_timeout_s: float | None = Field(
        None, gt=0, description="per-call timeout of reset in worker processes (a reset loads a game and may take "
        "longer than a step); None: step_timeout_s")
    recycle_workers_after: int | None = Field(
        None, ge=1, description="restart a worker process after it served this many resets, between episodes "
        "(bounds engines that leak per reset, e.g. ALFWorld engine: stock; see benchmarks/alfworld_memory.py); "
        "None: never")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="env-specific options")
    anchor: Literal["state", "observation"] = Field(
        "state", description="what keys GiGPO's step groups: state (info['anchor_state']: the env state, e.g. "
        "ALFWorld observation plus admissible actions) or observation (the raw observation text, verl-agent)")


class LoraConfig(StrictModel):
    """LoRA adapters (peft) on the trainable model."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | str = "all-linear"


class OpenAIConfig(StrictModel):
    """An OpenAI-compatible HTTP endpoint (evaluation-only baselines, the external skill writer)."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "default"
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the API key")
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0)
    check_seed: bool = Field(True, description="probe once whether the server honours `seed` (recorded per run)")


class VLLMConfig(StrictModel):
    """vLLM engine settings (GPU only)."""

    gpu_memory_utilization: float = Field(0.5, gt=0, le=1)
    tensor_parallel_size: int = Field(1, ge=1)
    enforce_eager: bool = False
    enable_sleep_mode: bool = True
    max_model_len: int | None = None
    placement: Literal["colocated", "separate"] = "colocated"
    sleep_level: Literal[0, 1, 2] = Field(
        1, description="sleep the engine between rollouts (0: never; 1: offload weights, drop KV cache; 2: drop both)")
    enable_prefix_caching: bool = Field(True, description="reuse KV of shared prompt prefixes (score mode)")


class PolicyConfig(StrictModel):
    """The language model and how it acts."""

    model: str = Field("smollm2-135m-instruct", description="alias (smollm2-135m-instruct, tiny-random), "
                       "a local folder, a hub id available offline, or a .gguf file")
    backend: Literal["hf", "vllm", "openai"] = "hf"
    action_mode: Literal["generate", "score"] = Field(
        "generate", description="generate: write <think>/<action> text; score: rank admissible actions")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:0, ...")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bfloat16 on GPU, float32 on CPU")
    max_new_tokens: int = Field(256, ge=1)
    max_prompt_tokens: int = Field(4096, ge=16)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    score_temperature: float = Field(1.0, gt=0.0, description="softmax temperature over candidates (score mode)")
    history_length: int = Field(2, ge=0, description="past (observation, action) steps shown in the prompt")
    invalid_action_penalty: float = Field(0.1, ge=0.0, description="subtracted from the step reward of invalid steps")
    generation_batch_size: int = Field(16, ge=1, description="prompts per batched generation call")
    stop: list[str] = Field(default_factory=list, description="stop strings (e.g. ['</action>']; kept in the "
                            "response); [] generates until EOS or max_new_tokens, as verl-agent does")
    validity: Literal["admissible", "format"] = Field(
        "admissible", description="admissible: valid = right format (think/action tags, no CJK) and an admissible "
        "action; format: verl-agent's rule (format only)")
    invalid_format_limit: int | None = Field(
        None, ge=1, description="end an episode after this many unparseable outputs (status invalid_format)")
    invalid_action_limit: int | None = Field(
        None, ge=1, description="end an episode after this many parsed but non-admissible actions (invalid_action)")
    score_chunk_size: int = Field(32, ge=1, description="candidate continuations per forward pass (score mode)")
    cpu_threads: int | None = Field(None, ge=1, description="torch intra-op threads when the model runs on CPU "
                                    "(None: torch's default; 1 avoids spin-waiting on a busy shared machine)")
    score_search_queries: int = Field(
        3, ge=1, le=8, description="WebShop score mode: concrete search queries derived from the task")
    lora: LoraConfig | None = None
    gradient_checkpointing: bool = False
    openai: OpenAIConfig = Field(default_factory=OpenAIConfig)
    vllm: VLLMConfig = Field(default_factory=VLLMConfig)
    tiny: dict[str, Any] = Field(default_factory=dict, description="overrides of the tiny-random model config")


class TrainConfig(StrictModel):
    """The training loop (ignored by evaluation-only algorithms)."""

    groups_per_iter: int = Field(16, ge=1, description="B: distinct tasks per iteration")
    group_size: int = Field(8, ge=1, description="G: rollouts per task (same task, same env seed)")
    lr: float = Field(1e-6, gt=0, description="AdamW learning rate (constant; verl-agent: 1e-6)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    ppo_epochs: int = Field(1, ge=1, description="K: passes over an iteration's step rows")
    minibatch_size: int = Field(256, ge=1, description="step rows per optimizer step")
    micro_batch_size: int = Field(8, ge=1, description="step rows per forward/backward pass")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient-norm clip per optimizer step")
    clip_ratio: float = Field(0.2, gt=0, lt=1, description="PPO clip epsilon (lower, and upper unless clip_ratio_high)")
    clip_ratio_high: float | None = Field(None, gt=0, description="asymmetric upper clip (None: clip_ratio)")
    dual_clip: float | None = Field(3.0, gt=1, description="dual-clip constant c for negative advantages (None: off)")
    kl_coef: float = Field(0.01, ge=0, description="weight of the k3 KL to the frozen reference policy (0: no "
                           "reference policy at all)")
    entropy_coef: float = Field(0.001, ge=0, description="weight of the entropy bonus (verl: 0.001)")
    loss_agg: Literal["token-mean", "seq-mean-token-mean"] = Field(
        "token-mean", description="how the per-token loss is averaged over a mini-batch")
    checkpoint_every: int = Field(5, ge=1, description="save a checkpoint every N iterations (and after the last)")
    keep_checkpoints: int = Field(2, ge=1, description="newest checkpoints kept")
    init_from: str | None = Field(None, description="run folder whose last checkpoint initialises the policy "
                                  "(e.g. an sft run; a LoRA adapter is merged into the base weights)")
    processes: int = Field(1, ge=1, description="trainer processes (data parallel; `siri-bench run --processes N`): "
                           "rollout groups are split over them, the update is one mini-batch over all of them")
    strategy: Literal["ddp", "fsdp"] = Field(
        "ddp", description="how processes > 1 share the update: ddp (every process holds the whole model, gradients "
        "are averaged; accelerate's DistributedDataParallel) or fsdp (parameters, gradients and optimizer states "
        "sharded over the processes; torch FSDP2 fully_shard per decoder layer)")
    fsdp_cpu_offload: bool = Field(False, description="fsdp: keep sharded parameters and optimizer states in CPU "
                                   "memory between uses (torch CPUOffloadPolicy; slower, for models that do not fit)")
    reward: Literal["won", "score"] = Field(
        "won", description="training reward on the step the env terminates: reward_scale * won (verl-agent), or "
        "reward_scale * score (WebShop's partial purchase score); the env reward itself stays native")
    reward_scale: float = Field(10.0, gt=0, description="multiplier of the training reward (verl-agent: 10)")
    warmup_steps: int = Field(0, ge=0, description="linear LR warm-up in optimizer steps (verl-agent: 0)")
    rollout_concurrency: int | None = Field(
        None, ge=1, description="training episodes played at once (env copies; one batched policy call per step); "
        "None: all of an iteration's episodes")


class ResourcesConfig(StrictModel):
    """Where the processes of a run go: Ray resources (``siri-bench run --backend ray``) and collective
    timeouts. None of this changes what a run computes (see :data:`SCALE_KEYS`)."""

    gpu_memory_gib: float | None = Field(None, gt=0, description="memory of each GPU this config was sized for "
                                         "(GiB; an 80 GB H100 or A100 is 80): `siri-bench plan-compute` checks "
                                         "the estimated peak against it, and the vLLM pool is a fraction of it")
    trainer_cpus: float = Field(1.0, gt=0, description="Ray CPUs per trainer process")
    trainer_gpus: float | None = Field(None, ge=0, description="Ray GPUs per trainer process (None: 1 when the "
                                       "policy runs on a GPU (device cuda, or the vllm back end), else 0)")
    env_worker_cpus: float = Field(1.0, gt=0, description="Ray CPUs per environment worker actor")
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK", description="Ray placement-group strategy of the trainer processes (PACK: as few nodes as possible)")
    vllm_engines: int = Field(1, ge=1, description="policy.vllm.placement: separate - vLLM engine actors shared by "
                              "the trainer processes")
    vllm_gpus_per_engine: float = Field(1.0, gt=0, description="policy.vllm.placement: separate - GPUs per engine")
    collective_timeout_s: float = Field(
        7200.0, gt=0, description="how long a trainer process waits in a collective (the other processes wait there "
        "while process 0 evaluates and writes checkpoints)")


#: Settings that change where and how fast a run executes, not what it computes: they are left out
#: of :meth:`ExperimentConfig.config_hash` and may change when an interrupted run resumes (a
#: checkpoint written by N processes resumes on M).
SCALE_KEYS: tuple[str, ...] = ("train.processes", "train.strategy", "train.fsdp_cpu_offload", "resources")


def without_scale_keys(tree: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved config mapping without :data:`SCALE_KEYS`."""
    out = copy.deepcopy(dict(tree))
    for key in SCALE_KEYS:
        parts = key.split(".")
        node: Any = out
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return out


class EvalConfig(StrictModel):
    """Periodic and final evaluation on a fixed split."""

    split: str | None = Field(None, description="split or panel (None: env.eval_split)")
    every: int = Field(5, ge=1, description="evaluate every N iterations (and after the last)")
    at_start: bool = Field(True, description="evaluate before the first update")
    num_tasks: int | None = Field(None, ge=1, description="first N tasks of the split (None: all)")
    episodes_per_task: int = Field(1, ge=1)
    temperature: float = Field(0.4, ge=0.0, description="0 means greedy")
    max_new_tokens: int | None = Field(None, ge=1)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    score_temperature: float = Field(0.0, ge=0.0, description="score mode: candidate softmax temperature "
                                     "sampled at in evaluation (0: argmax, greedy)")
    concurrency: int = Field(16, ge=1, description="episodes run at once (env copies; one batched policy call)")
    flush_every: int = Field(16, ge=1, description="write finished episodes to the run folder every N episodes "
                             "(an interrupted evaluation resumes after them)")
    keep_transcripts: Literal["eval", "eval+sample", "none"] = "eval"
    train_transcript_fraction: float = Field(0.02, ge=0, le=1)


# ----------------------------------------------------------------------------------------------
# The experiment
# ----------------------------------------------------------------------------------------------
class ExperimentConfig(StrictModel):
    """A whole experiment file."""

    name: str = Field("experiment", description="experiment name; runs go to output_dir/name/")
    description: str = ""
    env: EnvConfig = Field(default_factory=EnvConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    algorithm: dict[str, Any] = Field(default_factory=lambda: {"name": "react"},
                                      description="name plus the algorithm's own parameters")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    iterations: int = Field(0, ge=0, description="training iterations (0: evaluation only)")
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig,
                                       description="Ray resources and timeouts of multi-process runs")
    output_dir: str = "runs"
    grid: dict[str, list[Any]] | None = Field(None, description="dotted key -> values (full factorial)")
    variants: dict[str, dict[str, Any]] | None = Field(None, description="name -> dotted overrides")
    report: dict[str, Any] = Field(default_factory=dict, description="report options (baseline, references, ...)")

    @field_validator("algorithm", mode="before")
    @classmethod
    def _algorithm_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if not isinstance(value, Mapping):
            raise ValueError("must be a mapping with at least 'name', or an algorithm name")
        if "name" not in value:
            raise ValueError("needs a 'name' (see `siri-bench algos`)")
        return dict(value)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", value):
            raise ValueError("use letters, digits, '_', '-' and '.' only (it names a folder)")
        return value

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"seeds must be distinct, got {value}")
        return value

    @model_validator(mode="after")
    def _grid_keys(self) -> ExperimentConfig:
        for key, values in (self.grid or {}).items():
            if not values:
                raise ValueError(f"grid axis {key!r} has no values")
            if key == "seeds":
                raise ValueError("put seeds in `seeds:`, not in the grid (seed lists are shared by every cell)")
        return self

    @model_validator(mode="after")
    def _known_panel(self) -> ExperimentConfig:
        """A task panel named as the eval split must exist and belong to the env (fails at load,
        not after training)."""
        if "/" in self.eval_split:
            from envs.panels import resolve_split

            resolve_split(self.env.id, self.eval_split)
        return self

    # -- typed views -------------------------------------------------------------------------
    @property
    def algorithm_name(self) -> str:
        return str(self.algorithm["name"])

    def algorithm_params(self) -> BaseModel:
        """The algorithm's parameters validated by its registered ``Config`` model."""
        return validate_algorithm_params(self.algorithm)

    def env_kwargs(self) -> dict[str, Any]:
        """``env.kwargs`` validated by the env's registered config model (as a plain dict)."""
        return validate_env_kwargs(self.env.id, self.env.kwargs)

    @property
    def eval_split(self) -> str:
        return self.eval.split or self.env.eval_split

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def config_hash(self) -> str:
        """A hash of the resolved config (stable across key order; :data:`SCALE_KEYS` left out)."""
        blob = json.dumps(without_scale_keys(self.to_dict()), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------
# Validation of registry-dependent sections
# ----------------------------------------------------------------------------------------------
def validate_algorithm_params(section: Mapping[str, Any], where: str = "algorithm") -> BaseModel:
    from siri_bench.errors import RegistryError
    from siri_bench.registry import ALGORITHMS

    name = section.get("name")
    try:
        algo_cls = ALGORITHMS.get(str(name))
    except RegistryError as exc:
        raise ConfigError(f"{where}.name = {name!r}: {exc}") from None
    model = getattr(algo_cls, "Config", None)
    params = {k: v for k, v in section.items() if k != "name"}
    if model is None:
        if params:
            raise ConfigError(f"{where}: algorithm {name!r} takes no parameters, got {sorted(params)}")
        return StrictModel()
    try:
        return model(**params)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model, prefix=where)) from None


def validate_env_kwargs(env_id: str, kwargs: Mapping[str, Any], where: str = "env.kwargs") -> dict[str, Any]:
    from siri_bench.errors import RegistryError
    from siri_bench.registry import ENVS

    try:
        spec = ENVS.get(env_id)
    except RegistryError as exc:
        raise ConfigError(f"env.id = {env_id!r}: {exc}") from None
    if spec.config_model is None:
        return dict(kwargs)
    try:
        return spec.config_model(**kwargs).model_dump()
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, spec.config_model, prefix=where)) from None


# ----------------------------------------------------------------------------------------------
# Error messages
# ----------------------------------------------------------------------------------------------
def _submodel(model: type[BaseModel] | None, loc: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model class found by walking ``loc`` from ``model`` (None if not a model)."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _model_in_annotation(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _model_in_annotation(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in_annotation(arg)
        if found is not None:
            return found
    return None


def format_validation_error(exc: ValidationError, model: type[BaseModel] | None, prefix: str = "") -> str:
    """One line per problem: ``key = value: what is wrong; allowed: ...``."""
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        key = ".".join(str(p) for p in ([prefix] if prefix else []) + list(loc))
        etype = err["type"]
        if etype == "extra_forbidden":
            parent = _submodel(model, loc[:-1])
            allowed = sorted(parent.model_fields) if parent is not None else []
            bad = str(loc[-1]) if loc else "?"
            close = difflib.get_close_matches(bad, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            lines.append(f"unknown key {key!r}{hint} (allowed: {', '.join(allowed)})")
        elif etype == "missing":
            lines.append(f"missing required key {key!r}")
        elif etype == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            lines.append(f"{key} = {err.get('input')!r}: must be one of {expected}")
        else:
            shown = err.get("input")
            shown_txt = repr(shown) if not isinstance(shown, dict) else "{...}"
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
            lines.append(f"{key} = {shown_txt}: {msg}" if key else msg)
    return "; ".join(lines)


# ----------------------------------------------------------------------------------------------
# Loading and overrides
# ----------------------------------------------------------------------------------------------
def parse_override(text: str) -> tuple[str, Any]:
    """``a.b.c=value`` -> (``a.b.c``, parsed value); values are parsed as YAML (1, 0.5, true, [1,2])."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value (e.g. train.lr=1e-5)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*", key):
        raise ConfigError(f"override key {key!r} is not a dotted name (e.g. policy.temperature)")
    try:
        value = yaml.safe_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError:
        value = raw
    # YAML reads 1e-5 as a string; accept it as a number like Python does.
    if isinstance(value, str):
        try:
            value = float(value) if re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", value) else value
        except ValueError:
            pass
    return key, value


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set ``tree[a][b][c] = value`` for ``key == 'a.b.c'``, creating mappings on the way."""
    parts = key.split(".")
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {key!r}: {'.'.join(parts[:i + 1])!r} is {child!r}, not a mapping")
        node = child
    node[parts[-1]] = value


def get_dotted(tree: Mapping[str, Any], key: str, default: Any = None) -> Any:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _yaml_numbers(tree: Any) -> Any:
    """Turn YAML-1.1 strings such as '1e-6' into floats (PyYAML leaves them as strings)."""
    if isinstance(tree, dict):
        return {k: _yaml_numbers(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_yaml_numbers(v) for v in tree]
    if isinstance(tree, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", tree):
        return float(tree)
    return tree


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML experiment file into a mapping (errors name the file and line)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    if p.is_dir():
        raise ConfigError(f"{str(p)!r} is a folder; give an experiment YAML file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{p}: not valid YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of keys (name, env, policy, ...)")
    return _yaml_numbers(data)


def build_config(data: Mapping[str, Any], overrides: Iterable[str] = (), source: str = "config",
                 check_registries: bool = True) -> ExperimentConfig:
    """Apply overrides to ``data`` and validate everything (registry-dependent parts included)."""
    tree = copy.deepcopy(dict(data))
    if isinstance(tree.get("algorithm"), str):
        tree["algorithm"] = {"name": tree["algorithm"]}
    for text in overrides:
        key, value = parse_override(text)
        set_dotted(tree, key, value)
    try:
        cfg = ExperimentConfig(**tree)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {format_validation_error(exc, ExperimentConfig)}") from None
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if check_registries:
        for spec in expand_runs(cfg):
            try:
                spec.config.algorithm_params()
                spec.config.env_kwargs()
            except ConfigError as exc:
                where = f" (grid cell {spec.cell})" if spec.cell else ""
                raise ConfigError(f"{source}{where}: {exc}") from None
    return cfg


def load_config(path: str | Path, overrides: Iterable[str] = (), check_registries: bool = True) -> ExperimentConfig:
    """Read, override and validate an experiment file. Raises ConfigError with a one-line message."""
    data = read_config_file(path)
    data.setdefault("name", Path(path).stem)
    return build_config(data, overrides, source=str(path), check_registries=check_registries)


# ----------------------------------------------------------------------------------------------
# Grid expansion
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment: a grid cell (or the plain config) and one seed."""

    name: str
    seed: int
    cell: str
    config: ExperimentConfig

    @property
    def group(self) -> str:
        return self.config.name


def _slug(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = text.split("/")[-1]
    text = re.sub(r"[^A-Za-z0-9_.\-]+", "-", text).strip("-")
    return text[:40] or "x"


def _short_env(env_id: str) -> str:
    return env_id.split("/")[-1].split("-v")[0].lower()


def expand_runs(cfg: ExperimentConfig) -> list[RunSpec]:
    """All runs of an experiment: grid cells x variants x seeds, with stable names.

    A run's name is ``{algorithm}-{env}[-{cell}]-s{seed}``; the same file always gives the same
    names in the same order, so a re-run finds the folders of finished runs and skips them.
    """
    base = cfg.model_dump(mode="python")
    base["grid"] = None
    base["variants"] = None
    axes = list((cfg.grid or {}).items())
    cells: list[tuple[str, dict[str, Any]]] = []
    for combo in itertools.product(*[values for _, values in axes]) if axes else [()]:
        assignment = {key: value for (key, _), value in zip(axes, combo)}
        label = "-".join(f"{_slug(key.split('.')[-1])}={_slug(v)}" for key, v in assignment.items()
                         if key not in ("algorithm.name", "algorithm", "env.id"))
        cells.append((label, assignment))
    variants = list((cfg.variants or {}).items()) or [("", {})]
    runs: list[RunSpec] = []
    seen: set[str] = set()
    for label, assignment in cells:
        for vname, voverrides in variants:
            tree = copy.deepcopy(base)
            for key, value in {**assignment, **voverrides}.items():
                if key == "algorithm" and isinstance(value, str):
                    value = {"name": value}
                set_dotted(tree, key, value)
            cell = "-".join(p for p in (label, _slug(vname) if vname else "") if p)
            for seed in cfg.seeds:
                tree_s = copy.deepcopy(tree)
                tree_s["seeds"] = [seed]
                try:
                    run_cfg = ExperimentConfig(**tree_s)
                except ValidationError as exc:
                    raise ConfigError(f"grid cell {cell or '(base)'}: "
                                      f"{format_validation_error(exc, ExperimentConfig)}") from None
                algo = _slug(run_cfg.algorithm_name)
                name = "-".join(p for p in (algo, _short_env(run_cfg.env.id), cell, f"s{seed}") if p)
                if name in seen:
                    raise ConfigError(f"two grid cells give the same run name {name!r}; "
                                      "give the variants distinct names")
                seen.add(name)
                runs.append(RunSpec(name=name, seed=seed, cell=cell, config=run_cfg))
    return runs

"""The run shell: one run (config + seed) from a fresh or interrupted folder to ``DONE``.

:func:`run_training` is called by :func:`siri_bench.runner.execute_run`. It builds the
:class:`RunContext` (resolved config, the algorithm instance with its validated parameters, the
policy back end, env pools created on demand), saves the exact prompt templates of the run
(``templates.json``) and its fingerprint (``fingerprint.json``; data hashes are added when an env
pool reports them through ``env.unwrapped.data_fingerprint()``), then

* for evaluation-only algorithms (``Algorithm.trains == False``) runs the final evaluation
  (iteration 0) and finalizes the folder;
* for training algorithms runs the RL loop (:func:`train`: rollout -> advantages -> update ->
  weight sync -> periodic evaluation -> checkpoint; the RL core issue fills it in) and then the
  final evaluation.

Resuming: evaluation rounds skip episodes already written (:mod:`siri_bench.evaluate`); the
training loop resumes from ``run_dir.latest_checkpoint()``. A checkpoint folder
``checkpoints/iter_NNNNNN/`` holds the policy in ``policy/`` (transformers ``save_pretrained``
format, or the LoRA adapter) plus whatever the trainer and the algorithm save beside it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siri_bench.config import ExperimentConfig, RunSpec
from siri_bench.errors import SiriBenchError
from siri_bench.store import RunDir

log = logging.getLogger(__name__)

#: Sub-folder of a checkpoint that holds the policy weights.
POLICY_CHECKPOINT_DIR = "policy"


def env_pool_kwargs(cfg: ExperimentConfig, split: str) -> dict[str, Any]:
    """Construction kwargs of the env for ``split``: ``env.kwargs`` plus split, task types and step limit."""
    kwargs = dict(cfg.env_kwargs())
    kwargs["split"] = split
    if cfg.env.task_types is not None:
        kwargs["task_types"] = list(cfg.env.task_types)
    if cfg.env.max_steps is not None:
        kwargs["max_steps"] = cfg.env.max_steps
    return kwargs


def make_env_pool(cfg: ExperimentConfig, split: str, num_envs: int) -> Any:
    """An ``envs.workers.EnvPool`` of ``num_envs`` copies of the configured env on ``split``.

    ``env.workers == 1`` keeps the envs in this process (``inline``); more workers use
    ``env.worker_backend`` (processes or Ray actors).
    """
    from envs.workers import EnvPool

    backend = "inline" if cfg.env.workers == 1 else cfg.env.worker_backend
    return EnvPool(cfg.env.id, env_pool_kwargs(cfg, split), num_envs, workers=min(cfg.env.workers, num_envs),
                   backend=backend, timeout_s=cfg.env.step_timeout_s)


@dataclass
class RunContext:
    """Everything one run works with."""

    spec: RunSpec
    run_dir: RunDir
    algorithm: Any
    policy: Any
    templates: list[Any]
    pools: dict[tuple[str, int], Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)         # data fingerprints by split

    @property
    def config(self) -> ExperimentConfig:
        return self.spec.config

    @property
    def seed(self) -> int:
        return self.spec.seed

    def meta(self) -> dict[str, Any]:
        """Run-level columns of episode rows."""
        return {"run": self.spec.name, "algorithm": self.config.algorithm_name, "env": self.config.env.id,
                "split": self.config.eval_split, "seed": self.spec.seed}

    def env_pool(self, split: str, num_envs: int) -> Any:
        """A pool for ``split`` with at least ``num_envs`` envs (reused across rounds)."""
        for (s, n), pool in self.pools.items():
            if s == split and n >= num_envs:
                return pool
        pool = make_env_pool(self.config, split, num_envs)
        self.pools[(split, num_envs)] = pool
        if split not in self.data:
            reports = _env_class_has(self.config.env.id, "data_fingerprint")
            self.data[split] = pool.call("data_fingerprint", [0])[0] if reports else None
            self.write_fingerprint()
        return pool

    def write_fingerprint(self) -> None:
        """``fingerprint.json``: packages, data, template, model and config hashes of this run."""
        from siri_bench.fingerprint import build_fingerprint
        from siri_bench.store import atomic_write_json

        cfg = self.config
        templates = {t.id: json.dumps(t.describe(), sort_keys=True) for t in self.templates}
        if cfg.policy.backend == "openai":
            model: dict[str, Any] = {"name": cfg.policy.openai.model, "base_url": cfg.policy.openai.base_url}
        else:
            from siri_bench.models import weights_fingerprint

            model = weights_fingerprint(cfg.policy.model)
        data = {split: fp for split, fp in self.data.items() if fp is not None}
        atomic_write_json(self.run_dir.fingerprint_path, build_fingerprint(
            config=cfg.to_dict(), config_hash=cfg.config_hash(), env_id=cfg.env.id, data=data, templates=templates,
            model=model))

    def load_policy_checkpoint(self, folder: Path) -> None:
        self.policy_trainer().load_pretrained(folder)
        self.policy.on_weights_updated()

    def policy_trainer(self) -> Any:
        """The torch-side policy (``hf``), also behind the ``vllm`` back end."""
        return getattr(self.policy, "trainer", self.policy)

    def policy_info(self) -> dict[str, Any]:
        info = self.policy.info()
        return {"backend": info.backend, "model": info.model, **info.details}

    def close(self) -> None:
        for pool in self.pools.values():
            try:
                pool.close()
            except Exception:  # noqa: BLE001 - closing must not hide the run's own error
                log.warning("could not close an env pool", exc_info=True)
        self.pools.clear()
        self.policy.close()


def _env_class_has(env_id: str, attribute: str) -> bool:
    """Whether the registered env class of ``env_id`` defines ``attribute`` (without making an env)."""
    import importlib

    import gymnasium

    entry = gymnasium.spec(env_id).entry_point
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        entry = getattr(importlib.import_module(module), name, None)
    return hasattr(entry, attribute)


def build_run_context(spec: RunSpec, run_dir: RunDir, *, policy: Any = None) -> RunContext:
    """Algorithm (validated params), policy back end and saved templates for one run."""
    from siri_bench.policy import build_policy
    from siri_bench.prompts import env_format_for, save_templates
    from siri_bench.registry import ALGORITHMS

    cfg = spec.config
    algo_cls = ALGORITHMS.get(cfg.algorithm_name)
    params = cfg.algorithm_params()
    algorithm = algo_cls(params, config=cfg, run_dir=run_dir, seed=spec.seed)
    if getattr(algorithm, "registered_name", None) is None:
        algorithm.registered_name = cfg.algorithm_name
    if policy is None:
        policy = build_policy(cfg.policy, trainable=bool(algo_cls.trains), seed=spec.seed)
    templates = [env_format_for(cfg.env.id).template(cfg.policy.action_mode)]
    run_dir.path.mkdir(parents=True, exist_ok=True)
    save_templates(run_dir.path, templates, policy.tokenizer)
    ctx = RunContext(spec, run_dir, algorithm, policy, templates)
    ctx.write_fingerprint()
    algorithm.setup(ctx)
    return ctx


def train(ctx: RunContext) -> int:
    """The RL training loop; returns the last iteration. Filled in by the RL core issue:

    for each iteration (resuming after ``run_dir.latest_checkpoint()``): rollout of B groups x G
    episodes (:class:`~siri_bench.rollout.RolloutEngine`), advantages (``algorithms.estimators``),
    K update epochs over the step table, ``policy.on_weights_updated()``, evaluation every
    ``eval.every`` iterations (:func:`~siri_bench.evaluate.run_evaluation`), checkpoint every
    ``train.checkpoint_every`` iterations, one ``metrics.jsonl`` row per iteration.
    """
    raise SiriBenchError(
        f"algorithm {ctx.config.algorithm_name!r} trains the policy, but the RL training loop is not part of "
        "this build yet; run an evaluation-only algorithm (e.g. algorithm: react)")


def run_training(spec: RunSpec, run_dir: RunDir) -> None:
    """Run one run in its folder: (training, then) the final evaluation, then ``DONE``."""
    from siri_bench.evaluate import summarize
    from siri_bench.registry import ALGORITHMS

    cfg = spec.config
    algo_cls = ALGORITHMS.get(cfg.algorithm_name)
    if not algo_cls.trains and cfg.iterations > 0:
        log.warning("algorithm %r does not train; iterations = %d is ignored", cfg.algorithm_name, cfg.iterations)
    t0 = time.monotonic()
    ctx = build_run_context(spec, run_dir)
    try:
        iteration = train(ctx) if algo_cls.trains else 0
        t_eval = time.monotonic()
        frame = ctx.algorithm.evaluate(ctx, iteration)
        summary = summarize(frame)
        run_dir.append_metrics({"iteration": iteration, **summary, "time/eval_s": time.monotonic() - t_eval})
        run_dir.finalize({**summary, "iteration": iteration, "policy": ctx.policy_info(),
                          "time/total_s": time.monotonic() - t0})
        log.info("%s: success %.3f over %d episodes", spec.name, summary.get("eval/success", float("nan")),
                 summary.get("eval/episodes", 0))
    finally:
        ctx.close()

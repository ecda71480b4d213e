"""The run shell: one run (config + seed) from a fresh or interrupted folder to ``DONE``.

:func:`run_training` is called by :func:`siri_bench.runner.execute_run`. It builds the
:class:`RunContext` (resolved config, the algorithm instance with its validated parameters, the
policy back end, env pools created on demand), saves the exact prompt templates of the run
(``templates.json``) and its fingerprint (``fingerprint.json``; data hashes are added when an env
pool reports them through ``env.unwrapped.data_fingerprint()``), then

* for evaluation-only algorithms (``Algorithm.trains == False``) runs the final evaluation
  (iteration 0) and finalizes the folder;
* for training algorithms runs the RL loop (:func:`train`: rollout -> advantages -> update ->
  weight sync -> periodic evaluation -> checkpoint), whose last iteration is the final evaluation.

Resuming: evaluation rounds skip episodes already written (:mod:`siri_bench.evaluate`); the
training loop resumes from ``run_dir.latest_checkpoint()``. A checkpoint folder
``checkpoints/iter_NNNNNN/`` holds the policy in ``policy/`` (transformers ``save_pretrained``
format, or the LoRA adapter) plus whatever the trainer and the algorithm save beside it
(:mod:`siri_bench.training.checkpoint`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siri_bench.config import ExperimentConfig, RunSpec
from siri_bench.distributed import DistContext
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


def make_env_pool(cfg: ExperimentConfig, split: str, num_envs: int, dist: DistContext | None = None) -> Any:
    """An ``envs.workers.EnvPool`` of ``num_envs`` copies of the configured env on ``split``.

    ``env.workers == 1`` keeps the envs in this process (``inline``); more workers use
    ``env.worker_backend`` (processes or Ray actors). ``env.workers`` counts the workers of the
    whole run: with N trainer processes each has its share; under Ray placement (``--backend ray``)
    they are Ray actors of ``resources.env_worker_cpus`` CPUs.
    """
    from envs.workers import EnvPool

    dist = dist or DistContext()
    backend = "inline" if cfg.env.workers == 1 else cfg.env.worker_backend
    options = None
    if backend != "inline" and dist.placement == "ray":
        backend, options = "ray", {"num_cpus": cfg.resources.env_worker_cpus}
    workers = min(dist.share(cfg.env.workers), num_envs)
    log.info("env pool %s: %d env(s) on %d %s worker(s)", split, num_envs, workers, backend)
    return EnvPool(cfg.env.id, env_pool_kwargs(cfg, split), num_envs, workers=workers,
                   backend=backend, timeout_s=cfg.env.step_timeout_s, reset_timeout_s=cfg.env.reset_timeout_s,
                   recycle_after=cfg.env.recycle_workers_after, ray_actor_options=options)


@dataclass
class RunContext:
    """Everything one run works with."""

    spec: RunSpec
    run_dir: RunDir
    algorithm: Any
    policy: Any
    templates: list[Any]
    pools: dict[tuple[str, int], Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)         # data fingerprints by split (and panel)
    engines: set[str] = field(default_factory=set)             # engines running (env.prepare_engine())
    dist: DistContext = field(default_factory=DistContext)     # this process of a multi-process run

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
        pool = make_env_pool(self.config, split, num_envs, self.dist)
        self.pools[(split, num_envs)] = pool
        engines = self.engines
        if _env_class_has(self.config.env.id, "prepare_engine"):  # builds every env's engine now
            engines = engines | {str(e) for e in pool.call("prepare_engine").values()}
        if split not in self.data or engines != self.engines:
            if split not in self.data:
                reports = _env_class_has(self.config.env.id, "data_fingerprint")
                self.data[split] = pool.call("data_fingerprint", [0])[0] if reports else None
            self.engines = engines
            self.write_fingerprint()
        return pool

    def write_fingerprint(self) -> None:
        """``fingerprint.json``: packages, data, template, model and config hashes of this run."""
        if not self.dist.is_main:
            return
        from siri_bench.fingerprint import build_fingerprint
        from siri_bench.store import atomic_write_json

        cfg = self.config
        templates = {t.id: json.dumps(t.describe(), sort_keys=True) for t in self.templates}
        if cfg.policy.backend == "openai":
            model: dict[str, Any] = {"name": cfg.policy.openai.model, "base_url": cfg.policy.openai.base_url}
            # whether the server honoured the seed (probed at the first request; see policy/openai.py)
            model.update({k: v for k, v in self.policy.info().details.items() if k.startswith("seed_")})
        else:
            from siri_bench.models import weights_fingerprint

            model = weights_fingerprint(cfg.policy.model)
        data = {split: fp for split, fp in self.data.items() if fp is not None}
        atomic_write_json(self.run_dir.fingerprint_path, build_fingerprint(
            config=cfg.to_dict(), config_hash=cfg.config_hash(), env_id=cfg.env.id, data=data, templates=templates,
            model=model, engine=",".join(sorted(self.engines)) or None))

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


def build_run_context(spec: RunSpec, run_dir: RunDir, *, policy: Any = None, dist: DistContext | None = None
                      ) -> RunContext:
    """Algorithm (validated params), policy back end and saved templates for one run.

    A training algorithm's policy starts from ``train.init_from``'s last checkpoint when set (every
    time the context is built: training, resuming, ``siri-bench eval``). In a multi-process run
    only process 0 writes files; the algorithm of the other processes gets ``run_dir=None``."""
    from siri_bench.policy import build_policy
    from siri_bench.prompts import env_format_for, save_templates
    from siri_bench.registry import ALGORITHMS

    cfg = spec.config
    dist = dist or DistContext()
    algo_cls = ALGORITHMS.get(cfg.algorithm_name)
    params = cfg.algorithm_params()
    algorithm = algo_cls(params, config=cfg, run_dir=run_dir if dist.is_main else None, seed=spec.seed,
                         rank=dist.rank, world_size=dist.world_size)
    if getattr(algorithm, "registered_name", None) is None:
        algorithm.registered_name = cfg.algorithm_name
    if policy is None:
        init = None
        if algo_cls.trains and cfg.train.init_from:
            from siri_bench.training.checkpoint import init_from_folder

            init = init_from_folder(cfg.train.init_from, cfg.policy.model)
            log.info("initial weights from %s", init)
        policy = build_policy(cfg.policy, trainable=bool(algo_cls.trains), seed=spec.seed, init_weights=init)
    templates = [env_format_for(cfg.env.id).template(cfg.policy.action_mode)]
    if dist.is_main:
        run_dir.path.mkdir(parents=True, exist_ok=True)
        save_templates(run_dir.path, templates, policy.tokenizer)
    ctx = RunContext(spec, run_dir, algorithm, policy, templates, dist=dist)
    ctx.write_fingerprint()
    algorithm.setup(ctx)
    return ctx


def train(ctx: RunContext) -> int:
    """The RL training loop; returns the last iteration (which it has evaluated).

    Iteration ``i`` (1..``iterations``; iteration 0 is the evaluation before training):

    1. **rollout** - B = ``train.groups_per_iter`` tasks drawn from the run's task stream; the
       algorithm plans the episodes (default: B groups x G = ``train.group_size`` copies with the
       same task and env seed) and the rollout engine plays them on ``env.train_split``;
    2. **rewards and advantages** - the step table with the training reward (``train.reward``,
       ``train.reward_scale``), the algorithm's reward shaping, its advantages (the configured
       estimator, invalid steps penalised by ``policy.invalid_action_penalty``) and the rows of the
       base loss;
    3. **update** - old (and, with ``train.kl_coef > 0``, reference) log-probs, then
       ``train.ppo_epochs`` epochs of mini-batch AdamW steps with gradient accumulation and
       grad-norm clipping (:mod:`siri_bench.training.update`);
    4. **weight sync** - ``policy.on_weights_updated()`` (vLLM loads the new weights);
    5. ``algorithm.on_iteration_end(state)``, sampled training transcripts (``eval.keep_transcripts:
       eval+sample``);
    6. **evaluation** every ``eval.every`` iterations and after the last (``algorithm.evaluate``);
    7. one ``metrics.jsonl`` row; **checkpoint** every ``train.checkpoint_every`` iterations and
       after the last.

    The row is written before the checkpoint, so a run killed anywhere resumes from its last
    checkpoint ``c``: rows, evaluation rounds and training transcripts after ``c`` are dropped and
    redone, and since every random choice is seeded from the run seed and restored state, the redone
    iterations give the same numbers as an uninterrupted run.

    Metric names (one row per iteration): ``train/success``, ``train/score``, ``train/return``
    (training reward), ``train/native_return``, ``train/episode_length``, ``train/invalid_rate``,
    ``train/kl`` (k3 to the reference; None without one), ``train/clip_fraction``,
    ``train/entropy``, ``train/pg_loss``, ``train/approx_kl``, ``train/grad_norm`` (mean pre-clip norm
    over the optimizer steps), ``train/tokens_per_s`` (prompt + completion tokens of the rollout per
    second of the whole iteration), ``env/steps_per_s`` (env steps per rollout second),
    ``rollout/completion_tokens_per_s``, ``train/logprob_diff`` (recomputed vs sampling-time
    log-probs), ``time/rollout_s``, ``time/advantage_s``, ``time/update_s``, ``time/sync_s``,
    ``time/eval_s`` (0 without evaluation), ``time/iteration_s``; ``time/rollout_env_s`` and
    ``time/rollout_policy_s`` (the parts of the rollout spent in env calls and in the policy; with
    N processes the slowest process's), ``time/comm_s`` and ``train/processes`` (N > 1: seconds in
    collectives, waiting for other processes included); ``gpu/max_allocated_gib`` and
    ``gpu/max_reserved_gib`` on a GPU; ``loss/<name>`` for algorithm loss
    terms; ``eval/*`` (:func:`siri_bench.evaluate.summarize`) on evaluation iterations.
    """
    from siri_bench.distributed.rollout import sharded_rollout
    from siri_bench.errors import ConfigError
    from siri_bench.evaluate import summarize
    from siri_bench.records import episodes_frame, transcript_frame
    from siri_bench.rollout import RolloutEngine, RolloutSettings
    from siri_bench.seeding import TaskStream
    from siri_bench.training.checkpoint import (
        load_checkpoint,
        make_optimizer,
        make_reference,
        save_checkpoint,
        seed_everything,
    )
    from siri_bench.training.metrics import rollout_metrics
    from siri_bench.training.rewards import step_table
    from siri_bench.training.state import TrainingState
    from siri_bench.training.update import UpdateSettings, prepare_batch, update_policy
    from siri_bench.transcripts import (
        drop_train_transcripts_after,
        keeps_train_transcript,
        write_train_transcripts,
    )

    cfg, tc, run_dir, algorithm = ctx.config, ctx.config.train, ctx.run_dir, ctx.algorithm
    dist = ctx.dist                                     # one process of N (a no-op context for N = 1)
    if cfg.env.train_split is None:
        raise ConfigError(f"algorithm {cfg.algorithm_name!r} trains, but env.train_split is not set")
    trainer = ctx.policy_trainer()                      # the torch model (also behind the vllm back end)
    update_settings = UpdateSettings.from_config(cfg)
    rollout_settings = RolloutSettings.from_config(cfg, "train")
    parallel = dist if dist.enabled else None           # what the update needs of the other processes

    # -- set-up: the reference is the initial policy, so it is made before any checkpoint is loaded
    seed_everything(dist.process_seed(ctx.seed))
    reference = make_reference(trainer) if tc.kl_coef > 0 else None
    optimizer, scheduler = make_optimizer(trainer.model, tc)
    stream = TaskStream(ctx.seed)
    pool = ctx.env_pool(cfg.env.train_split, tc.rollout_concurrency or dist.share(tc.groups_per_iter * tc.group_size))
    train_ids = list(pool.call("task_ids", [0])[0])
    if not train_ids:
        raise ConfigError(f"the train split {cfg.env.train_split!r} of {cfg.env.id} has no tasks")

    def play_here(specs: list[Any], hooks: Any) -> Any:
        size = tc.rollout_concurrency or len(specs)
        engine = RolloutEngine(ctx.env_pool(cfg.env.train_split, max(1, size)), ctx.policy, rollout_settings, hooks)
        return engine.run(specs)

    def play(specs: list[Any]) -> Any:
        # N processes: each plays its whole groups, every process gets all episodes in spec order
        return sharded_rollout(dist, specs, play_here, algorithm)

    state = TrainingState(cfg, run_dir, ctx.seed, ctx.policy, stream, train_ids, rollout_settings,
                          task_info_fn=lambda task_id: pool.call("task_info", [0], task_id)[0], rollout_fn=play)

    # -- resume from the last checkpoint (or start): forget everything written after it
    done = 0
    checkpoint = run_dir.latest_checkpoint()
    if checkpoint is not None:
        done = load_checkpoint(checkpoint.path, policy=trainer, optimizer=optimizer, scheduler=scheduler,
                               task_stream=stream, algorithm=algorithm)
        if dist.enabled:
            seed_everything(dist.process_seed(ctx.seed) + done)
        ctx.policy.on_weights_updated()
        log.info("resuming after iteration %d (%s)", done, checkpoint.path)
    # N processes: wrap (DDP) or shard (FSDP) the model, after any checkpoint was loaded into it
    dist.prepare(trainer, reference, optimizer, algorithm=algorithm, config=cfg)
    if dist.is_main:
        run_dir.drop_parts_after(done)
        drop_train_transcripts_after(run_dir, done)
    last = cfg.iterations

    def evaluate_here(iteration: int) -> dict[str, Any]:
        t0 = time.monotonic()
        frame = algorithm.evaluate(ctx, iteration)
        return {**summarize(frame), "time/eval_s": time.monotonic() - t0}

    def evaluate(iteration: int) -> dict[str, Any]:
        # process 0 evaluates (and writes the episodes); the others take its algorithm state after
        summary = dist.on_main(lambda: evaluate_here(iteration))
        dist.sync_algorithm(algorithm)
        return summary or {}

    if done == 0 and (cfg.eval.at_start or last == 0) and not _has_row(run_dir, 0):
        row = {"iteration": 0, **evaluate(0)}
        if dist.is_main:
            run_dir.append_metrics(row)

    for iteration in range(done + 1, last + 1):
        t_iteration = time.monotonic()
        state.iteration, state.metrics = iteration, {}
        dist.take_comm_seconds()

        # 1. rollout
        t0 = time.monotonic()
        tasks = stream.draw(train_ids, tc.groups_per_iter)
        result = play(algorithm.plan_rollouts(iteration, tasks, state))
        state.episodes = result.episodes
        steps = result.steps
        rollout_s = time.monotonic() - t0

        # 2. training rewards, advantages, rows of the base loss
        t0 = time.monotonic()
        table = step_table(result.episodes, tc.reward, tc.reward_scale)
        table = algorithm.shape_rewards(table, result.episodes)
        table["advantage"] = algorithm.advantages(table)
        table["base"] = algorithm.base_loss_rows(table)
        state.steps = table
        advantage_s = time.monotonic() - t0

        # 3. update
        t0 = time.monotonic()
        batch, diagnostics = prepare_batch(trainer, reference, table, steps, update_settings, dist=parallel)
        update = update_policy(trainer, optimizer, scheduler, batch, update_settings, run_seed=ctx.seed,
                               iteration=iteration, algorithm=algorithm, rollout_settings=rollout_settings,
                               dist=parallel)
        update_s = time.monotonic() - t0
        if cfg.policy.backend == "vllm":     # vLLM's sampling-time log-probs vs the trainer's (diagnostic only)
            diagnostics["train/vllm_logprob_abs_diff"] = diagnostics["train/logprob_diff"]

        # 4. weight sync
        t0 = time.monotonic()
        ctx.policy.on_weights_updated()
        sync_s = time.monotonic() - t0

        # 5. the algorithm's iteration end, sampled training transcripts
        metrics = state.metrics
        metrics.update(rollout_metrics(result.episodes, table, rollout_s))
        env_s, policy_s = dist.max(result.env_s), dist.max(result.policy_s)       # the slowest process's
        metrics.update({**diagnostics, **update, "time/rollout_s": rollout_s, "time/rollout_env_s": env_s,
                        "time/rollout_policy_s": policy_s, "time/advantage_s": advantage_s,
                        "time/update_s": update_s, "time/sync_s": sync_s})
        metrics.update(algorithm.on_iteration_end(state) or {})
        if cfg.eval.keep_transcripts == "eval+sample" and dist.is_main:
            kept = [e for e in result.episodes
                    if keeps_train_transcript(e.episode_id, ctx.seed, cfg.eval.train_transcript_fraction)]
            write_train_transcripts(run_dir, iteration, transcript_frame([s for e in kept for s in e.steps]),
                                    episodes_frame(kept, ctx.meta()))

        # 6. evaluation
        evaluated = iteration == last or iteration % cfg.eval.every == 0
        metrics.update(evaluate(iteration) if evaluated else {"time/eval_s": 0.0})

        # 7. metrics row, then checkpoint
        metrics["time/iteration_s"] = time.monotonic() - t_iteration
        tokens = metrics["train/prompt_tokens"] + metrics["train/completion_tokens"]
        metrics["train/tokens_per_s"] = tokens / metrics["time/iteration_s"]
        metrics.update(_gpu_memory(trainer, dist))
        if dist.enabled:
            metrics.update({"train/processes": dist.world_size, "time/comm_s": dist.take_comm_seconds()})
        if dist.is_main:
            run_dir.append_metrics({"iteration": iteration, **metrics})
        log.info("iteration %d/%d: train success %.3f, invalid %.3f, grad norm %s, %.1fs%s", iteration, last,
                 metrics["train/success"], metrics["train/invalid_rate"], _fmt(metrics.get("train/grad_norm")),
                 metrics["time/iteration_s"],
                 f", eval success {metrics['eval/success']:.3f}" if "eval/success" in metrics else "")
        if iteration == last or iteration % tc.checkpoint_every == 0:
            saved_policy, saved_optimizer = dist.checkpoint_views(trainer, optimizer)   # FSDP: gathered
            if dist.is_main:
                save_checkpoint(run_dir, iteration, policy=saved_policy, optimizer=saved_optimizer,
                                scheduler=scheduler, task_stream=stream, algorithm=algorithm,
                                keep=tc.keep_checkpoints,
                                meta={"algorithm": cfg.algorithm_name, "model": cfg.policy.model,
                                      "lora": cfg.policy.lora is not None, "init_from": tc.init_from,
                                      "processes": dist.world_size, "strategy": dist.strategy})
    dist.barrier()                          # the last checkpoint is complete before any process returns
    return last


def _has_row(run_dir: RunDir, iteration: int) -> bool:
    return any(r.get("iteration") == iteration for r in run_dir.read_metrics())


def _gpu_memory(trainer: Any, dist: DistContext) -> dict[str, float]:
    """``gpu/max_allocated_gib`` and ``gpu/max_reserved_gib``: the iteration's peak GPU memory of torch's
    allocator in this process (the largest over the processes; vLLM's pool is inside ``reserved``
    only when the engine allocates through torch), then the peak is reset. Empty on CPU."""
    import torch

    device = getattr(trainer, "device", None)
    if device is None or getattr(device, "type", "cpu") != "cuda":
        return {}
    allocated = dist.max(torch.cuda.max_memory_allocated(device) / 1024**3)
    reserved = dist.max(torch.cuda.max_memory_reserved(device) / 1024**3)
    torch.cuda.reset_peak_memory_stats(device)
    return {"gpu/max_allocated_gib": allocated, "gpu/max_reserved_gib": reserved}


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3g}"


def run_training(spec: RunSpec, run_dir: RunDir, dist: DistContext | None = None) -> None:
    """Run one run in its folder: (training, then) the final evaluation, then ``DONE``.

    ``dist``: this process of a multi-process run (:mod:`siri_bench.distributed`); process 0 writes
    the folder, the others only train."""
    from siri_bench.distributed.launch import placement
    from siri_bench.evaluate import round_episodes, summarize
    from siri_bench.registry import ALGORITHMS

    cfg = spec.config
    dist = dist or DistContext(placement=placement())
    algo_cls = ALGORITHMS.get(cfg.algorithm_name)
    if not algo_cls.trains and cfg.iterations > 0:
        log.warning("algorithm %r does not train; iterations = %d is ignored", cfg.algorithm_name, cfg.iterations)
    t0 = time.monotonic()
    ctx = build_run_context(spec, run_dir, dist=dist)
    try:
        if algo_cls.trains:
            iteration = train(ctx)                    # it evaluates its last iteration itself
            if not dist.is_main:
                return
            frame = round_episodes(run_dir, iteration)
        elif not dist.is_main:
            return
        else:
            iteration = 0
            t_eval = time.monotonic()
            frame = ctx.algorithm.evaluate(ctx, iteration)
            if not _has_row(run_dir, iteration):      # a resumed run whose row was written keeps it
                run_dir.append_metrics({"iteration": iteration, **summarize(frame),
                                        "time/eval_s": time.monotonic() - t_eval})
        summary = summarize(frame)
        run_dir.finalize({**summary, "iteration": iteration, "policy": ctx.policy_info(),
                          "time/total_s": time.monotonic() - t0})
        log.info("%s: success %.3f over %d episodes", spec.name, summary.get("eval/success", float("nan")),
                 summary.get("eval/episodes", 0))
    finally:
        ctx.close()

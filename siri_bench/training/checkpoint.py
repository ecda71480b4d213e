"""Optimizer, reference policy, ``train.init_from`` and checkpoints of a training run.

A checkpoint ``checkpoints/iter_NNNNNN/`` (written atomically by
:meth:`siri_bench.store.RunDir.save_checkpoint`) holds:

* ``policy/`` - the policy (transformers ``save_pretrained``; only the LoRA adapter with LoRA);
* ``trainer.pt`` - optimizer and LR-scheduler state, the iteration;
* ``rng.pt`` - torch (CPU and CUDA), numpy and python RNG states and the run's task stream. The
  policy's sampling streams need no state: every step samples with a seed derived from the run seed
  and the episode's position (:mod:`siri_bench.seeding`);
* ``algorithm.pt`` - the algorithm's ``state_dict()``;
* ``meta.json`` - iteration, algorithm, model, LoRA, init_from (for people and tools).

With ``train.init_from`` the initial weights come from another run's last checkpoint (merged, if it
is a LoRA adapter); :func:`siri_bench.trainer.build_run_context` applies it every time the run's
policy is built, so a LoRA checkpoint of such a run is always read on top of the same base.
"""

from __future__ import annotations

import copy
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from siri_bench.errors import ConfigError, RunStateError
from siri_bench.store import RunDir

#: Sub-folder of a checkpoint that holds the policy weights (as in :mod:`siri_bench.trainer`).
POLICY_DIR = "policy"


# ----------------------------------------------------------------------------------------------
# Optimizer
# ----------------------------------------------------------------------------------------------
def make_optimizer(model: Any, train_cfg: Any) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW (torch defaults: betas 0.9/0.999, eps 1e-8, as verl) over the trainable parameters, and a
    constant LR after ``train.warmup_steps`` linear warm-up steps (verl-agent: constant, no warm-up)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the policy has no trainable parameters (check policy.lora.target_modules)")
    optimizer = torch.optim.AdamW(params, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    warmup = int(train_cfg.warmup_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0)
    return optimizer, scheduler


# ----------------------------------------------------------------------------------------------
# Reference policy
# ----------------------------------------------------------------------------------------------
def _is_peft(model: Any) -> bool:
    return callable(getattr(model, "disable_adapter", None)) and hasattr(model, "peft_config")


class AdapterDisabledReference:
    """The reference policy of a LoRA run: the same model with its adapters disabled (no copy)."""

    def __init__(self, policy: Any):
        self.policy = policy
        self.tokenizer = policy.tokenizer

    @property
    def device(self) -> Any:
        return self.policy.device

    def logprobs(self, *args: Any, **kwargs: Any) -> Any:
        with self.policy.model.disable_adapter():
            return self.policy.logprobs(*args, **kwargs)

    def candidate_logprobs(self, *args: Any, **kwargs: Any) -> Any:
        with self.policy.model.disable_adapter():
            return self.policy.candidate_logprobs(*args, **kwargs)

    def candidate_log_softmax(self, *args: Any, **kwargs: Any) -> Any:
        with self.policy.model.disable_adapter():
            return self.policy.candidate_log_softmax(*args, **kwargs)


def make_reference(policy: Any) -> Any:
    """A frozen reference policy with the policy's current weights: adapters disabled for a LoRA
    model, otherwise a frozen copy of the model (its memory doubles the weights')."""
    if _is_peft(policy.model):
        return AdapterDisabledReference(policy)
    from siri_bench.policy.hf import HFPolicy

    model = copy.deepcopy(policy.model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    ref = HFPolicy(model, policy.tokenizer, model_name=f"{policy.model_name} (reference)",
                   generation_batch_size=policy.generation_batch_size, score_chunk_size=policy.score_chunk_size)
    ref.autocast_dtype = policy.autocast_dtype
    return ref


# ----------------------------------------------------------------------------------------------
# init_from
# ----------------------------------------------------------------------------------------------
def init_from_folder(init_from: str, model: str) -> Path:
    """The policy folder of the last checkpoint of run folder ``init_from`` (checked: a run folder
    with a complete checkpoint of the same model)."""
    src = RunDir(init_from)
    if not src.exists():
        raise ConfigError(f"train.init_from = {init_from!r} is not a run folder (no config.yaml); give the folder "
                          "of a finished training run, e.g. runs/<experiment>/<run>")
    ckpt = src.latest_checkpoint()
    if ckpt is None:
        raise RunStateError(f"train.init_from = {init_from!r} has no complete checkpoint; train it first")
    their_model = (src.read_config().get("policy") or {}).get("model")
    if their_model is not None and their_model != model:
        raise ConfigError(f"train.init_from = {init_from!r} trained policy.model = {their_model!r}, this run uses "
                          f"{model!r}; use the same model")
    folder = ckpt.path / POLICY_DIR
    if not folder.is_dir():
        raise RunStateError(f"{ckpt.path} has no {POLICY_DIR}/ folder")
    return folder


# ----------------------------------------------------------------------------------------------
# Save and load
# ----------------------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed the global torch, numpy and python generators (nothing in the loop should need them:
    sampling, task draws and shuffles use their own seeded streams)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def save_checkpoint(run_dir: RunDir, iteration: int, *, policy: Any, optimizer: Any, scheduler: Any,
                    task_stream: Any, algorithm: Any, keep: int, meta: dict[str, Any] | None = None) -> Path:
    """Write checkpoint ``iteration`` (atomically; older ones beyond ``keep`` are removed)."""
    def write(folder: Path) -> None:
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()          # no "Writing model shards" bar in run logs
        try:
            policy.save_pretrained(folder / POLICY_DIR)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        torch.save({"iteration": iteration, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
                   folder / "trainer.pt")
        torch.save({**rng_state(), "task_stream": task_stream.state_dict()}, folder / "rng.pt")
        torch.save(algorithm.state_dict(), folder / "algorithm.pt")
        (folder / "meta.json").write_text(json.dumps({"iteration": iteration, "time": time.time(), **(meta or {})},
                                                     indent=2, sort_keys=True, default=str) + "\n")

    return run_dir.save_checkpoint(iteration, write, keep=keep)


def load_checkpoint(folder: Path, *, policy: Any, optimizer: Any, scheduler: Any, task_stream: Any,
                    algorithm: Any) -> int:
    """Restore everything :func:`save_checkpoint` wrote; returns the checkpoint's iteration."""
    folder = Path(folder)
    try:
        trainer = torch.load(folder / "trainer.pt", map_location="cpu", weights_only=False)
        rng = torch.load(folder / "rng.pt", map_location="cpu", weights_only=False)
        algo = torch.load(folder / "algorithm.pt", map_location="cpu", weights_only=False)
    except FileNotFoundError as exc:
        raise RunStateError(f"checkpoint {folder} is incomplete ({exc.filename} is missing); delete it to resume "
                            "from the one before") from None
    policy.load_pretrained(folder / POLICY_DIR)
    optimizer.load_state_dict(trainer["optimizer"])
    scheduler.load_state_dict(trainer["scheduler"])
    task_stream.load_state_dict(rng["task_stream"])
    set_rng_state(rng)
    algorithm.load_state_dict(algo)
    return int(trainer["iteration"])

"""The vllm back end at scale: weight sync from a sharded (FSDP) trainer, every trainer process
syncing its own colocated engine, and (on a GPU with vLLM) a real training run.

The CPU tests drive the back end through the stand-in engine of ``tests/policy/test_vllm_backend.py``;
the contract tests at the end run the real engine and skip, saying why, where vLLM or a GPU is absent.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from siri_bench.config import expand_runs, load_config
from siri_bench.distributed.launch import SETUP_ENV
from siri_bench.runner import execute_run
from siri_bench.store import RunDir
from tests.policy.test_vllm_backend import fake_vllm_policy, perturb
from tests.training.conftest import tiny_policy

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "gigpo_alfworld_tiny.yaml"


@pytest.fixture()
def one_process_group():
    import torch.distributed as tdist

    store = tdist.HashStore()
    tdist.init_process_group("gloo", rank=0, world_size=1, store=store)
    yield
    tdist.destroy_process_group()


def test_weight_sync_from_an_fsdp_sharded_trainer_sends_whole_weights(one_process_group):
    from torch.distributed.fsdp import fully_shard

    trainer = tiny_policy()
    policy, engine = fake_vllm_policy(trainer)
    perturb(trainer.model, scale=0.1, seed=3)
    want = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for layer in trainer.model.model.layers:
        fully_shard(layer)
    fully_shard(trainer.model)
    assert any(hasattr(v, "full_tensor") for v in trainer.model.state_dict().values())   # sharded now
    policy.on_weights_updated()
    got = engine.torch_model.state_dict()
    for name, tensor in want.items():
        assert not hasattr(got[name], "full_tensor")
        torch.testing.assert_close(got[name], tensor, msg=name)
    assert engine.events[-1] == ("reset_prefix_cache",)


@pytest.mark.slow
def test_two_trainer_processes_each_sync_their_colocated_engine(tmp_path, monkeypatch):
    spec = expand_runs(load_config(TINY, [f"output_dir={tmp_path}", "iterations=2", "eval.at_start=false",
                                          "policy.backend=vllm", "policy.device=cpu", "train.processes=2",
                                          "train.lr=1e-2"]))[0]          # a missed sync would show
    monkeypatch.setenv(SETUP_ENV, "tests.scale.hooks:stand_in_vllm_engine")
    execute_run(spec)
    run = RunDir(tmp_path / spec.config.name / spec.name)
    assert run.is_done()
    rows = run.read_metrics()
    assert [r["iteration"] for r in rows] == [1, 2]
    for row in rows:
        # the engine samples with the synced weights: its log-probs are the trainer's up to numerics
        assert row["train/vllm_logprob_abs_diff"] < 1e-4
        assert row["train/processes"] == 2 and row["train/grad_norm"] > 0


# ----------------------------------------------------------------------------------------------
# Contract tests (GPU + vLLM)
# ----------------------------------------------------------------------------------------------
def _gpu_vllm_reason() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed (pip install 'siri-bench[vllm]' on a GPU machine)"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible"
    return None


@pytest.mark.gpu
@pytest.mark.skipif(_gpu_vllm_reason() is not None, reason=str(_gpu_vllm_reason()))
@pytest.mark.parametrize("processes", [1, 2])
def test_contract_colocated_vllm_training_run(tmp_path, processes):
    if processes > torch.cuda.device_count():
        pytest.skip(f"{processes} trainer processes need {processes} GPUs; {torch.cuda.device_count()} visible")
    spec = expand_runs(load_config(TINY, [f"output_dir={tmp_path}", "iterations=2", "eval.at_start=false",
                                          "policy.backend=vllm", "policy.device=cuda", "policy.dtype=float32",
                                          "policy.vllm.gpu_memory_utilization=0.2", "policy.vllm.enforce_eager=true",
                                          f"train.processes={processes}"]))[0]
    execute_run(spec)
    run = RunDir(tmp_path / spec.config.name / spec.name)
    assert run.is_done()
    for row in run.read_metrics():
        # the colocated engine woke with the trainer's weights after every update: same distribution
        assert row["train/vllm_logprob_abs_diff"] < 1e-2
        assert row["time/sync_s"] >= 0 and row["train/grad_norm"] > 0


def test_separate_vllm_placement_is_refused_clearly():
    from siri_bench.config import PolicyConfig
    from siri_bench.errors import ConfigError
    from siri_bench.policy import build_policy

    cfg = PolicyConfig(model="tiny-random", backend="vllm", device="cpu", vllm={"placement": "separate"})
    with pytest.raises(ConfigError, match="not implemented yet: use colocated"):
        build_policy(cfg, trainable=True)

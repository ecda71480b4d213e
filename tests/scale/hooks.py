"""Set-up functions for trainer processes started by siri-bench in tests (``SIRI_BENCH_PROCESS_SETUP``)."""

from __future__ import annotations


class Interrupted(RuntimeError):
    """Stands for a kill of every trainer process in the middle of an iteration."""


def interrupt_update_of_iteration_2() -> None:
    """Every process stops in iteration 2's update (after checkpoint 1 was written)."""
    import siri_bench.training.update as update

    real = update.update_policy

    def fake(*args, **kwargs):
        if kwargs["iteration"] == 2:
            raise Interrupted("interrupted by the test in iteration 2")
        return real(*args, **kwargs)

    update.update_policy = fake


def stand_in_vllm_engine() -> None:
    """The vllm back end with the stand-in engine of tests/policy (answers like ``vllm.LLM`` with a
    copy of the trainer's model; weights reach it only through the back end's weight sync)."""
    from types import SimpleNamespace

    import siri_bench.policy.vllm as vllm_backend
    from tests.policy.test_vllm_backend import fake_vllm_policy

    def create(cls, trainer, cfg, *, seed=0):
        policy, engine = fake_vllm_policy(trainer, sleep_level=cfg.vllm.sleep_level)
        policy.sync_weights()
        return policy

    vllm_backend.import_vllm = lambda: SimpleNamespace(__version__="stand-in")
    vllm_backend.VLLMPolicy.create = classmethod(create)

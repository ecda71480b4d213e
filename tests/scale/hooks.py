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

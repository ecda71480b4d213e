"""Killing a `siri-bench run` subprocess at a chosen point (the resume-after-kill tests)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def sigkill_once_written(proc: subprocess.Popen, marker: Path, timeout_s: float,
                         while_waiting: Callable[[], None] | None = None) -> str:
    """Wait until ``marker`` exists (or the process ends, or ``timeout_s`` passes), SIGKILL the process
    if it still runs, and return its stderr. ``while_waiting`` is called on every poll."""
    deadline = time.monotonic() + timeout_s
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        if while_waiting is not None:
            while_waiting()
        time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    return err.decode()

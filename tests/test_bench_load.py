"""bench/load.py's helpers: a busy core really is busy for the wave and gone after it; CPU time is read from /proc."""
from __future__ import annotations

import os
import time

from bench import load


def test_a_busy_core_spins_while_the_wave_runs_and_stops_after():
    with load.busy_core() as spinner:
        assert spinner is not None and spinner.poll() is None
        deadline = time.monotonic() + 60  # a wait for the spinner to be scheduled, not a speed target
        while load.cpu_seconds(spinner.pid) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert load.cpu_seconds(spinner.pid) >= 0.3  # it uses CPU, not sleeps
    assert spinner.poll() is not None  # stopped at the end of the block


def test_no_busy_core_unless_asked():
    with load.busy_core(False) as spinner:
        assert spinner is None


def test_cpu_seconds_counts_this_process_work():
    before = load.cpu_seconds(os.getpid())
    start = time.process_time()
    while time.process_time() - start < 0.2:
        pass
    assert load.cpu_seconds(os.getpid()) - before >= 0.1  # clock ticks are coarse: at least half the work seen

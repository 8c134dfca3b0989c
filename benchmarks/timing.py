"""Timing helper shared by the benchmark scripts (run them as ``python benchmarks/<script>.py``)."""

import time


def best_of(function, repeat):
    """Return (fastest wall time in s over ``repeat`` calls, result of the last call)."""
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result

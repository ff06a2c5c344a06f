"""Timing helper shared by the benchmark and verify."""

import time


def timed_calls(function, argument, repeats, warmup=0):
    """Seconds of each of ``repeats`` calls ``function(argument)`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        function(argument)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(argument)
        times.append(time.perf_counter() - start)
    return times

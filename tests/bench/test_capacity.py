"""The serving benchmarks' plumbing that runs without a model: the machine-load note and the raw engine's first
token from llama.cpp's timings."""

import os
import re

from workbench.bench.capacity import first_from_timings, machine_load


def test_the_load_note_gives_the_load_average_and_the_cores():
    found = re.fullmatch(r"load (\d+\.\d) on (\d+) cores", machine_load())
    assert found and int(found.group(2)) == os.cpu_count()


def test_a_whole_replys_first_token_is_its_end_less_the_decoding_after_that_token():
    # 5 tokens decoded in 400 ms: the last 4 took 320 ms, so the first came 0.32 s before the reply ended
    assert abs(first_from_timings(2.0, {"predicted_n": 5, "predicted_ms": 400.0}) - 1.68) < 1e-9
    assert first_from_timings(2.0, None) is None and first_from_timings(2.0, {"predicted_n": 0}) is None

"""The serving benchmarks' plumbing that runs without a model: the machine-load note and the raw engine's first
token from llama.cpp's timings."""

import os
import re

from workbench.bench.capacity import first_from_timings, machine_load


def test_the_load_note_gives_the_load_average_and_the_cores():
    found = re.fullmatch(r"load (\d+\.\d) on (\d+) cores", machine_load())
    assert found and int(found.group(2)) == os.cpu_count()


def test_a_whole_replys_first_token_is_its_end_less_the_decoding_after_that_token():
    # llama.cpp's clock for the decoding starts at the first token (a 1-token reply reports 0 ms): 5 tokens in
    # 400 ms means the 4 after the first took 400 ms, so the first came 0.4 s before the reply ended
    assert abs(first_from_timings(2.0, {"predicted_n": 5, "predicted_ms": 400.0}) - 1.6) < 1e-9
    assert first_from_timings(0.5, {"predicted_n": 1, "predicted_ms": 0.0}) == 0.5
    assert first_from_timings(2.0, None) is None and first_from_timings(2.0, {"predicted_n": 0}) is None

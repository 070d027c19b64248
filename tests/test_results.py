"""efficiency.results: one typed result, serialised in one place, tabled in one place."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from efficiency.results import Latency, MeasuredOn, Result, results_frame

WORKLOAD = {"batch_size": 1, "seq_len": 128, "dtype": "float32", "mode": "inference"}
MEASURED = {
    "model": "bert-base-uncased",
    "name": "BERT-base (uncased)",
    "workload": WORKLOAD,
    "params": 109_482_240,
    "flops": 22_348_431_360,
    "measured": True,
    "hardware": {"id": "local-cpu", "device": "cpu", "name": "Test CPU", "threads": 2, "environment": {"x": 1}},
    "latency_ms": {"median": 276.0, "p10": 270.0, "p90": 290.0, "iqr": 9.0, "std": 5.0, "n": 12},
    "throughput_per_s": 3.6,
    "peak_memory_bytes": 500_000_000,
    "training_step_ms": {"median": 900.0, "p10": 880.0, "p90": 950.0},
    "peak_memory_training_bytes": 1_400_000_000,
    "reused": True,
}


def test_a_static_profile_round_trips_to_the_same_json_keys_and_values() -> None:
    golden = Path(__file__).parent / "data" / "cli_static_golden.json"  # the CLI's JSON, less run times
    for entry in json.loads(golden.read_text()):
        data = Result.from_dict(entry).to_dict()
        assert data.pop("timings_s") == {}
        assert data == entry


def test_measured_fields_are_typed_and_come_back_as_they_were_stored() -> None:
    result = Result.from_dict(MEASURED)
    assert result.latency_ms == Latency(median=276.0, p10=270.0, p90=290.0, iqr=9.0, std=5.0, n=12)
    assert result.hardware == MeasuredOn("local-cpu", "cpu", "Test CPU", 2, {"x": 1})
    assert result.hardware_text() == "Test CPU (cpu, 2 threads)"
    data = result.to_dict()
    assert {k: data[k] for k in MEASURED} == MEASURED
    assert "ttft_ms" not in data  # a measured field nobody measured is left out, not written as null
    assert data["error"] is None and "error" in data  # a counted field is always stated


def test_keys_of_another_program_version_are_kept_not_dropped() -> None:
    result = Result.from_dict({**MEASURED, "energy_joules_estimated": 1.5})
    assert result.extra == {"energy_joules_estimated": 1.5}
    assert result.to_dict()["energy_joules_estimated"] == 1.5


def test_a_failure_names_its_model_setup_and_reason_in_one_line() -> None:
    failed = Result.failure("gpt2/", WORKLOAD, "timed out after 3 s", "timeout")
    assert not failed.ok and failed.error_kind == "timeout" and not failed.measured
    assert Result.from_dict(failed.to_dict()) == failed


def test_the_frame_takes_medians_and_the_training_peak_in_training() -> None:
    training = Result.from_dict({**MEASURED, "model": "b", "name": "B", "workload": {**WORKLOAD, "mode": "training"}})
    static = Result.from_dict({"model": "c", "workload": WORKLOAD, "params": 10, "flops": 20})
    failed = Result.failure("d", WORKLOAD, "boom")
    frame = results_frame([Result.from_dict(MEASURED), training, static, failed, Result.from_dict(MEASURED)])
    assert list(frame["model_id"]) == ["bert-base-uncased", "b", "c"]  # failures and repeats left out
    first, second, third = frame.to_dict("records")
    assert first["latency_ms"] == 276.0 and first["peak_memory_bytes"] == 500_000_000
    assert second["peak_memory_bytes"] == 1_400_000_000 and second["training_step_ms"] == 900.0
    assert first["obtained"] == "measured on Test CPU (cpu, 2 threads)" and third["obtained"] == "counted (static)"
    assert math.isnan(third["latency_ms"]) and pd.isna(third["hardware"])


def test_hardware_line_says_one_thread_in_the_singular():
    from efficiency.results import MeasuredOn

    assert MeasuredOn(id="local-cpu", name="Test CPU", device="cpu", threads=1).describe() == "Test CPU (cpu, 1 thread)"

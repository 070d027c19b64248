"""Roofline estimator against hand-computed closed forms, and the hardware CLI commands: offline, fast."""

from __future__ import annotations

import json
import math

import pytest

from efficiency.cli import hardware as cli_hardware
from efficiency.cli.args import Parser, UsageError
from efficiency.counters.params import ParamCounts
from efficiency.counters.profile import StaticProfile, error_profile
from efficiency.counters.trace import OpRecord
from efficiency.hardware import UnknownHardwareError, load_hardware, roofline
from efficiency.hardware.roofline import DecodeShape, estimate, estimate_many
from efficiency.specs import HardwareSpec, ModelSpec, Workload

PEAK = 1e12  # FLOP/s
BANDWIDTH = 1e11  # B/s: ridge point 10 FLOP/B
PARAMS = 1000
# Compute-bound op: 1 GFLOP over 1 MB -> 1 ms of compute, 0.01 ms of memory.
COMPUTE_OP = OpRecord("addmm", flops=1_000_000_000, elementwise_flops=0.0, bytes_read=600_000, bytes_written=400_000)
# Memory-bound op: 100 MB with 1 M elementwise FLOPs -> 1 ms of memory, 0.001 ms of compute.
MEMORY_OP = OpRecord("add", flops=0, elementwise_flops=1e6, bytes_read=60_000_000, bytes_written=40_000_000)


def toy_hw(memory_bytes: float = 1e9, kind: str = "cpu", hw_id: str = "toy") -> HardwareSpec:
    return HardwareSpec(hw_id, "Toy chip", kind, {"float32": PEAK}, BANDWIDTH, memory_bytes)


def toy_profile(ops: list[OpRecord] | None = None, model: str = "toy-model", mode: str = "inference") -> StaticProfile:
    workload = Workload(batch_size=1, seq_len=16, mode=mode).for_modality("text")
    params = ParamCounts(PARAMS, PARAMS, 0, PARAMS, PARAMS, PARAMS)
    return StaticProfile(model=model, workload=workload, params=params, op_records=ops or [COMPUTE_OP, MEMORY_OP])


def test_per_op_roofline_times_sum_with_overhead():
    result = estimate(toy_profile(), toy_hw(), overhead_s=5e-6)
    # max(1 ms, 0.01 ms) + max(0.001 ms, 1 ms) + 2 x 5 us
    assert result.estimated_latency_ms == pytest.approx(1.0 + 1.0 + 0.010)
    assert result.overhead_ms == pytest.approx(0.010)
    assert result.compute_time_ms == pytest.approx(1.001)
    assert result.memory_time_ms == pytest.approx(1.01)
    assert result.note == "estimated (roofline)" and result.to_dict()["estimated"] is True


def test_overhead_is_charged_once_per_op_and_defaults_per_kind():
    base = estimate(toy_profile(), toy_hw(), overhead_s=0.0).estimated_latency_ms
    assert estimate(toy_profile(), toy_hw(), overhead_s=1e-3).estimated_latency_ms == pytest.approx(base + 2.0)
    for kind, overhead in roofline.OVERHEAD_S_BY_KIND.items():
        result = estimate(toy_profile(), toy_hw(kind=kind))
        assert result.estimated_latency_ms == pytest.approx(base + 2 * overhead * 1e3)
    with pytest.raises(ValueError, match="overhead_s"):
        estimate(toy_profile(), toy_hw(), overhead_s=-1.0)


def test_whole_model_bound_follows_ridge_point():
    memory_heavy = estimate(toy_profile(), toy_hw())  # AI = 1.001e9 / 1.01e8 = 9.91 < ridge 10
    assert memory_heavy.ridge_point == pytest.approx(10.0)
    assert memory_heavy.arithmetic_intensity == pytest.approx(1.001e9 / 1.01e8)
    assert memory_heavy.bound == "memory"
    assert memory_heavy.attainable_flops_per_s == pytest.approx(memory_heavy.arithmetic_intensity * BANDWIDTH)
    compute_heavy = estimate(toy_profile([COMPUTE_OP, COMPUTE_OP, MEMORY_OP]), toy_hw())  # AI 19.9 > 10
    assert compute_heavy.bound == "compute"
    assert compute_heavy.attainable_flops_per_s == PEAK


def test_dtype_picks_the_peak_and_rescales_bytes():
    hw = HardwareSpec("toy2", "Toy", "gpu", {"float32": PEAK, "bfloat16": 4 * PEAK}, BANDWIDTH, 1e9)
    result = estimate(toy_profile(), hw, dtype="bfloat16", overhead_s=0.0)
    assert result.memory_time_ms == pytest.approx(1.01 / 2)  # 2-byte elements instead of 4
    assert result.compute_time_ms == pytest.approx(1.001 / 4)
    with pytest.raises(ValueError, match="no peak"):
        estimate(toy_profile(), toy_hw(), dtype="tfloat32")


def test_fits_verdict_around_the_capacity():
    # weights 1000 x 4 B + live outputs of the last 4 ops (here both: 0.4 MB + 40 MB)
    needed = PARAMS * 4 + 400_000 + 40_000_000
    assert estimate(toy_profile(), toy_hw()).memory_needed_bytes == needed
    assert estimate(toy_profile(), toy_hw(memory_bytes=needed)).fits is True
    assert estimate(toy_profile(), toy_hw(memory_bytes=needed - 1)).fits is False


def test_training_memory_adds_gradients_adamw_and_stored_activations():
    ops = [MEMORY_OP] * 6  # inference keeps 4 outputs alive, training keeps all 6 for backward
    inference = estimate(toy_profile(ops), toy_hw()).memory_needed_bytes
    training = estimate(toy_profile(ops, mode="training"), toy_hw())
    assert inference == PARAMS * 4 + 4 * 40_000_000
    assert training.memory_needed_bytes == PARAMS * 4 * 2 + PARAMS * 8 + 6 * 40_000_000
    assert "forward pass" in training.note


def test_decode_step_closed_form():
    shape = DecodeShape(layers=2, kv_heads=2, head_dim=8, query_heads=4)
    context, batch = 64, 3
    kv = 2 * 2 * 2 * 8 * context * batch * 4
    assert shape.kv_bytes(context, batch, 4) == kv
    flops = batch * (2 * PARAMS + 4 * 2 * 4 * 8 * context)
    expected = max(flops / PEAK, (PARAMS * 4 + kv) / BANDWIDTH) + 2 * 1e-5
    seconds = roofline.decode_seconds(toy_profile(), shape, toy_hw(), "float32", batch, context, 1e-5)
    assert seconds == pytest.approx(expected)


def test_moe_decode_reads_the_experts_a_batch_touches():
    params = ParamCounts(
        total=10_000, trainable=10_000, embedding=0, non_embedding=10_000, as_used=10_000, active=3_000
    )  # 8 experts, top-2: experts hold (10000 - 3000) / (1 - 2/8) params
    profile = StaticProfile(model="moe", workload={}, params=params, op_records=[COMPUTE_OP])
    shape = DecodeShape(1, 1, 8, 1, moe_top_k=2, moe_experts=8)
    expert_params = 7_000 / 0.75
    dense = 10_000 - expert_params
    assert roofline.weights_read_params(profile, shape, 1) == pytest.approx(dense + expert_params * 2 / 8)
    assert roofline.weights_read_params(profile, shape, 10_000) == pytest.approx(10_000)


def test_causal_lm_from_a_real_tiny_config():
    spec = ModelSpec(
        id="tiny-gpt2",
        model_type="gpt2",
        task="causal-lm",
        modality="text",
        config={"n_layer": 2, "n_head": 4, "n_embd": 64, "vocab_size": 128, "n_positions": 64},
    )
    workload = Workload(batch_size=1, seq_len=32)
    profile = roofline.trace_profile(spec, workload)
    assert roofline.decode_shape(spec) == DecodeShape(layers=2, kv_heads=4, head_dim=16, query_heads=4)
    result = estimate(profile, toy_hw(), spec=spec, overhead_s=0.0)
    kv = 2 * 2 * 4 * 16 * 32 * 4
    assert result.decode_ms_per_token is not None and result.decode_ms_per_token > 0
    assert result.memory_needed_bytes > profile.params.total * 4 + kv
    assert estimate(profile, toy_hw()).decode_ms_per_token is None  # not in the catalog, no spec: no decode


def test_estimate_many_rows_and_error_rows():
    profiles = [toy_profile(model="a"), toy_profile(model="b"), error_profile("c", Workload(), ValueError("boom"))]
    chips = [toy_hw(hw_id="x"), toy_hw(hw_id="y")]
    frame = estimate_many(profiles, chips)
    assert frame.shape[0] == 6
    assert list(frame.loc[frame["model"] == "c", "hardware"]) == ["x", "y"]
    assert frame.loc[frame["model"] == "c", "error"].str.contains("boom").all()
    assert frame.loc[frame["model"] != "c", "error"].isna().all()


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """A tiny parser with only the hardware commands, isolated data dir, and a fake profiler."""
    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(tmp_path))

    def fake_trace(name: str, workload: Workload) -> StaticProfile:
        if name == "broken":
            return error_profile(name, workload, ValueError("cannot build"))
        return toy_profile(model=name)

    monkeypatch.setattr(roofline, "safe_trace_profile", fake_trace)
    parser = Parser(prog="test")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    commands = cli_hardware.register(sub)
    assert set(commands) == {"hardware", "estimate"}

    def run(*argv: str) -> int:
        args = parser.parse_args(argv)
        return commands[args.command](args)

    return run


def test_cli_estimate_json_keys(cli, capsys):
    assert cli("estimate", "toy-a", "toy-b", "--hardware", "h100-sxm,t4", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["model"], r["hardware"]) for r in rows] == [
        ("toy-a", "h100-sxm"),
        ("toy-a", "t4"),
        ("toy-b", "h100-sxm"),
        ("toy-b", "t4"),
    ]
    for row in rows:
        assert {
            "model",
            "hardware",
            "estimated_latency_ms",
            "bound",
            "fits",
            "arithmetic_intensity",
            "memory_needed_bytes",
            "decode_ms_per_token",
            "estimated",
        } <= set(row)
        assert row["bound"] in {"compute", "memory"} and isinstance(row["fits"], bool)
        assert row["estimated"] is True and math.isfinite(row["estimated_latency_ms"])


def test_cli_estimate_all_hardware_and_failed_model(cli, capsys):
    assert cli("estimate", "toy", "broken", "--hardware", "all", "--csv") == 1
    lines = capsys.readouterr().out.strip().splitlines()
    chips = len(load_hardware())
    assert len(lines) == 1 + 2 * chips
    assert sum("cannot build" in line for line in lines) == chips


def test_cli_unknown_hardware_names_alternatives(cli):
    with pytest.raises(UnknownHardwareError, match="did you mean.*h100-sxm") as caught:
        cli("estimate", "toy", "--hardware", "h100")
    assert isinstance(caught.value, ValueError) and "\n" not in str(caught.value)


def test_cli_hardware_list_json(cli, capsys):
    assert cli("hardware", "list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"h100-sxm", "raspberry-pi-5"} <= {r["id"] for r in rows}
    h100 = next(r for r in rows if r["id"] == "h100-sxm")
    assert h100["ridge_point_float32"] == pytest.approx(67e12 / 3.35e12)
    assert h100["overhead_s"] == roofline.OVERHEAD_S_BY_KIND["gpu"]
    assert "cpu_cores" not in h100  # an accelerator's peak is not a count of CPU cores
    pi = next(r for r in rows if r["id"] == "raspberry-pi-5")  # its peak assumes all four cores busy
    assert (pi["cpu_cores"], pi["cpu_threads"]) == (4, 4) and pi["cpu_assumption"].startswith("all 4 cores")


def test_cli_hardware_calibrate_passes_options(cli, capsys, monkeypatch):
    from efficiency.hardware import calibrate as calibrate_module

    seen = {}

    def fake_calibrate(device: str, threads: int | None = None, recalibrate: bool = False) -> HardwareSpec:
        seen.update(device=device, threads=threads, recalibrate=recalibrate)
        return toy_hw(hw_id="local-cpu")

    monkeypatch.setattr(calibrate_module, "calibrate", fake_calibrate)
    assert cli("hardware", "calibrate", "--threads", "2", "--fresh", "--json") == 0
    assert seen == {"device": "cpu", "threads": 2, "recalibrate": True}
    assert json.loads(capsys.readouterr().out)["id"] == "local-cpu"


@pytest.mark.parametrize("bad", ["-1", "nan", "inf", "1e7", "abc"])
def test_cli_estimate_rejects_impossible_overheads(cli, bad):
    with pytest.raises(UsageError, match="overhead"):  # main() prints its one line and exits with 2
        cli("estimate", "toy", "--hardware", "t4", f"--overhead-us={bad}")


def test_cli_estimate_overhead_changes_the_estimate(cli, capsys):
    assert cli("estimate", "toy", "--hardware", "t4", "--overhead-us=0", "--json") == 0
    none = json.loads(capsys.readouterr().out)[0]["estimated_latency_ms"]
    assert cli("estimate", "toy", "--hardware", "t4", "--overhead-us=1000", "--json") == 0
    slow = json.loads(capsys.readouterr().out)[0]["estimated_latency_ms"]
    assert slow > none

"""Measurement on local hardware: statistics against closed forms, then tiny real models end to end."""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest
import torch

from efficiency.measure import check_device, measure_model, supported_dtypes
from efficiency.measure.generation import DeviceClock, generate_once, measure_generation, prompt_length
from efficiency.measure.memory import (
    PeakMemory,
    baseline_bytes,
    inference_breakdown,
    parameter_bytes,
    track_peak,
    training_breakdown,
)
from efficiency.measure.timing import LatencyStats, measure_inference, measure_latency, percentile
from efficiency.measure.training import TrainingStep, measure_training
from efficiency.models.inputs import make_inputs
from efficiency.models.loading import build_model
from efficiency.specs import ModelSpec, Workload

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TINY_BERT = ModelSpec(
    id="tiny-bert",
    model_type="bert",
    task="base",
    modality="text",
    config={
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "vocab_size": 1000,
        "max_position_embeddings": 128,
    },
)
TINY_GPT2 = ModelSpec(
    id="tiny-gpt2",
    model_type="gpt2",
    task="causal-lm",
    modality="text",
    config={
        "n_layer": 2,
        "n_embd": 64,
        "n_head": 2,
        "vocab_size": 1000,
        "n_positions": 128,
        "bos_token_id": 0,
        "eos_token_id": 0,
    },
)
TINY_VIT = ModelSpec(
    id="tiny-vit",
    model_type="vit",
    task="image-classification",
    modality="vision",
    config={
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "image_size": 32,
        "patch_size": 8,
        "num_labels": 10,
    },
)
WORKLOAD = Workload(batch_size=2, seq_len=16, image_size=32)


@pytest.fixture(scope="module")
def bert() -> torch.nn.Module:
    return build_model(TINY_BERT, device="cpu")


@pytest.fixture(scope="module")
def gpt2() -> torch.nn.Module:
    return build_model(TINY_GPT2, device="cpu")


# --- statistics, closed forms --------------------------------------------------------------------


def test_stats_of_one_to_ten_match_closed_forms() -> None:
    stats = LatencyStats.from_samples([float(i) for i in range(10, 0, -1)])
    assert stats.n == 10
    assert stats.median == pytest.approx(5.5)
    assert stats.p10 == pytest.approx(1.9)  # rank 0.9 between 1 and 2
    assert stats.p90 == pytest.approx(9.1)
    assert stats.iqr == pytest.approx(7.75 - 3.25)
    assert stats.mean == pytest.approx(5.5)
    assert stats.std == pytest.approx((sum((i - 5.5) ** 2 for i in range(1, 11)) / 9) ** 0.5)
    assert stats.total == pytest.approx(55.0)


def test_percentile_agrees_with_numpy() -> None:
    samples = sorted([0.3, 0.1, 0.7, 0.2, 0.9, 0.4, 0.35])
    for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0):
        assert percentile(samples, q) == pytest.approx(np.percentile(samples, q * 100))


def test_stats_to_dict_is_milliseconds() -> None:
    stats = LatencyStats.from_samples([0.002])
    assert stats.to_dict() == {"median": 2.0, "p10": 2.0, "p90": 2.0, "iqr": 0.0, "std": 0.0, "n": 1}


def test_stats_refuse_no_samples() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        LatencyStats.from_samples([])


class FakeClock:
    """A clock that only moves when the timed function runs: each call takes ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def work(self) -> None:
        self.calls += 1
        self.now += self.step


def test_stops_when_both_count_and_time_are_reached() -> None:
    clock = FakeClock(0.25)
    stats = measure_latency(clock.work, min_repeats=3, min_time_s=2.0, warmup=2, clock=clock)
    assert stats.n == 8  # 8 x 0.25 s = 2 s: time is the binding limit
    assert clock.calls == 2 + 8
    assert stats.median == pytest.approx(0.25)
    assert stats.std == pytest.approx(0.0)
    clock = FakeClock(0.25)
    assert measure_latency(clock.work, min_repeats=5, min_time_s=0.1, warmup=0, clock=clock).n == 5


def test_max_repeats_caps_fast_functions() -> None:
    clock = FakeClock(1e-6)
    assert measure_latency(clock.work, min_repeats=3, min_time_s=10.0, max_repeats=50, clock=clock).n == 50


def test_measure_latency_on_real_clock() -> None:
    # 0.5 ms a call: the time minimum (not the 1000-repeat cap) is what stops it, on any machine speed.
    stats = measure_latency(lambda: time.sleep(0.0005), min_repeats=10, min_time_s=0.05)
    assert stats.n >= 10
    assert stats.total >= 0.05
    assert stats.n < 1000
    assert stats.p10 <= stats.median <= stats.p90


# --- inference ------------------------------------------------------------------------------------


def test_inference_latency_and_throughput(bert: torch.nn.Module) -> None:
    threads_before = torch.get_num_threads()
    inputs = make_inputs(TINY_BERT, WORKLOAD)
    result = measure_inference(
        bert, inputs, TINY_BERT, WORKLOAD, threads=1, forward_flops=1e6, min_repeats=10, min_time_s=0.2
    )
    stats = result.latency
    assert torch.get_num_threads() == threads_before
    assert stats.n >= 10 and stats.total >= 0.2
    assert 0 < stats.p10 <= stats.median <= stats.p90
    assert result.items_per_s == pytest.approx(2 / stats.median)
    assert result.tokens_per_s == pytest.approx(2 * 16 / stats.median)
    assert result.achieved_flops_per_s == pytest.approx(1e6 / stats.median)
    data = result.to_dict()
    assert set(data["latency_ms"]) == {"median", "p10", "p90", "iqr", "std", "n"}
    assert data["latency_ms"]["median"] == pytest.approx(stats.median * 1e3)


# --- generation -----------------------------------------------------------------------------------


def test_generation_decodes_exactly_the_requested_tokens(gpt2: torch.nn.Module) -> None:
    prompt = torch.randint(0, 1000, (2, 8))
    with torch.inference_mode():
        run, tokens = generate_once(gpt2, prompt, new_tokens=5, clock=DeviceClock("cpu"))
    assert len(run.decode_step_s) == 5
    assert tokens.shape == (2, 6)  # the prefill's token plus one per decode step
    assert run.prefill_s > 0 and all(s > 0 for s in run.decode_step_s)


def test_generation_measurement(gpt2: torch.nn.Module) -> None:
    result = measure_generation(gpt2, TINY_GPT2, WORKLOAD, threads=1, new_tokens=4, repeats=3)
    assert len(result.runs) == 3
    assert all(len(run.decode_step_s) == 4 for run in result.runs)
    decode_median = statistics.median(run.decode_s for run in result.runs)
    assert result.decode_tokens_per_s == pytest.approx(2 * 4 / decode_median)
    data = result.to_dict()
    assert data["ttft_ms"]["n"] == 3 and data["generation_new_tokens"] == 4
    assert data["decode_ms_per_token"]["median"] == pytest.approx(1e3 * result.decode_per_token.median)


def test_prompt_shortened_to_fit_positions() -> None:
    assert prompt_length(TINY_GPT2, Workload(seq_len=128), new_tokens=32) == 96
    assert prompt_length(TINY_GPT2, Workload(seq_len=16), new_tokens=32) == 16


def test_generation_refuses_encoders(bert: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="causal LMs only"):
        measure_generation(bert, TINY_BERT, WORKLOAD)


# --- training -------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [TINY_BERT, TINY_GPT2, TINY_VIT], ids=lambda s: s.id)
def test_training_step_updates_weights_and_reports_samples_per_s(spec: ModelSpec) -> None:
    model = build_model(spec, device="cpu")
    before = [p.detach().clone() for p in model.parameters()]
    step = TrainingStep(model, spec, WORKLOAD)
    result = measure_training(step, threads=1, warmup=1, min_repeats=2, min_time_s=0.05)
    assert model.training
    assert result.step.n >= 2
    assert result.samples_per_s == pytest.approx(2 / result.step.median)
    assert "training_step_ms" in result.to_dict()
    changed = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert changed > 0.9 * len(before)  # AdamW moved (nearly) every tensor: every head got a gradient
    assert len(step.optimizer.state) > 0
    step.close()
    assert not model.training and not step.optimizer.state


# --- memory ---------------------------------------------------------------------------------------


def test_rss_sampler_sees_a_fresh_allocation() -> None:
    baseline = baseline_bytes("cpu")
    size = 64 * 2**20
    with track_peak("cpu", interval_s=0.001) as peak:
        block = torch.ones(size // 4)  # written, so its pages are resident
        del block
    assert peak.kind == "process_rss" and peak.samples >= 2
    assert peak.peak_bytes - baseline >= 0.9 * size


def test_breakdowns_split_the_peak() -> None:
    model = build_model(TINY_BERT, device="cpu")
    step = TrainingStep(model, TINY_BERT, WORKLOAD)
    step()
    weights = parameter_bytes(model)
    fake = PeakMemory("process_rss", peak_bytes=1000 + 10 * weights)
    inference = inference_breakdown(model, fake, baseline=1000)
    assert inference.weights_bytes == weights and inference.peak_bytes == 10 * weights
    assert inference.activations_bytes == 10 * weights - weights - inference.buffers_bytes
    training = training_breakdown(model, step.optimizer, fake, baseline=1000)
    assert training.gradients_bytes == weights
    assert training.optimizer_state_bytes >= 2 * weights  # exp_avg, exp_avg_sq (+ step counters)
    assert training.sources["optimizer_state_bytes"].startswith("measured")
    low = training_breakdown(model, step.optimizer, PeakMemory("process_rss", peak_bytes=1001), baseline=1000)
    assert low.activations_bytes == 0 and "shown as 0" in low.sources["activations_bytes"]


# --- the high-level entry -------------------------------------------------------------------------


def test_measure_model_training_causal_lm() -> None:
    events: list[tuple[str, float]] = []
    workload = Workload(batch_size=2, seq_len=16, mode="training")
    result = measure_model(
        TINY_GPT2,
        workload,
        threads=1,
        repeats=3,
        min_time_s=0.05,
        new_tokens=4,
        progress=lambda phase, fraction: events.append((phase, fraction)),
    )
    assert result["measured"] is True and result["device"] == "cpu" and result["threads"] == 1
    assert result["latency_ms"]["n"] >= 3
    assert result["throughput_per_s"] == pytest.approx(2 / (result["latency_ms"]["median"] / 1e3))
    assert result["tokens_per_s"] == pytest.approx(16 * result["throughput_per_s"])
    assert result["generation_new_tokens"] == 4 and result["decode_tokens_per_s"] > 0
    assert result["ttft_ms"]["median"] > 0 and result["decode_ms_per_token"]["median"] > 0
    assert result["training_samples_per_s"] > 0 and result["training_step_ms"]["n"] >= 3
    weights = result["memory_breakdown"]["weights_bytes"]
    assert result["peak_memory_bytes"] > 0
    assert result["peak_memory_training_bytes"] >= weights
    assert result["memory_breakdown_training"]["optimizer_state_bytes"] >= 2 * weights
    assert set(result["timings_s"]) == {"build", "inference", "generation", "training"}
    assert [phase for phase, _ in events] == ["build", "inference", "generation", "training", "done"]
    fractions = [fraction for _, fraction in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_measure_model_inference_vision_bfloat16() -> None:
    workload = Workload(batch_size=1, image_size=32, dtype="bfloat16")
    result = measure_model(TINY_VIT, workload, threads=1, repeats=3, min_time_s=0.02)
    assert "tokens_per_s" not in result and "training_step_ms" not in result and "ttft_ms" not in result
    assert result["dtype"] == "bfloat16" and result["workload"]["image_size"] == 32
    assert set(result["timings_s"]) == {"build", "inference"}


def test_refusals_name_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="accepted there: float32, bfloat16"):
        measure_model(TINY_BERT, Workload(dtype="float16"))
    with pytest.raises(ValueError, match="threads"):
        measure_model(TINY_BERT, WORKLOAD, threads=10_000)
    with pytest.raises(ValueError, match="repeats"):
        measure_model(TINY_BERT, WORKLOAD, repeats=0)
    assert supported_dtypes("cpu") == ("float32", "bfloat16")
    assert check_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            check_device("cuda:0")


# --- CUDA (skipped without a GPU) -----------------------------------------------------------------


@needs_cuda
def test_cuda_event_timing_matches_wall_clock() -> None:
    matrix = torch.randn(2048, 2048, device="cuda")
    stats = measure_latency(lambda: matrix @ matrix, device="cuda", min_repeats=20, min_time_s=0.1)
    assert stats.n >= 20 and stats.total >= 0.1
    assert stats.p10 <= stats.median <= stats.p90


@needs_cuda
def test_cuda_measure_model_memory_is_the_allocators() -> None:
    workload = Workload(batch_size=2, seq_len=16, mode="training", dtype="float16")
    result = measure_model(TINY_GPT2, workload, device="cuda", repeats=3, min_time_s=0.05, new_tokens=4)
    assert result["device"].startswith("cuda:")
    breakdown = result["memory_breakdown_training"]
    assert breakdown["kind"] == "cuda_allocator"
    assert result["peak_memory_training_bytes"] >= breakdown["weights_bytes"] * 4  # weights, grads, 2 states
    assert result["peak_memory_bytes"] >= result["memory_breakdown"]["weights_bytes"]

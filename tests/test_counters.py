"""Counters against closed forms on tiny hand-built modules and tiny configs (fvcore's style of test)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from efficiency.counters.analytic import analytic_count
from efficiency.counters.fvcore_counter import count_fvcore
from efficiency.counters.params import CallCounter, count_params
from efficiency.counters.static import profile_static
from efficiency.counters.trace import OpTracer, torch_flop_counter
from efficiency.models.loading import build_model, resolve
from efficiency.specs import ModelSpec, Workload


class TwoLinears(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 16)
        self.b = nn.Linear(16, 4, bias=False)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class Attention(nn.Module):
    def forward(self, q, k, v):
        return nn.functional.scaled_dot_product_attention(q, k, v)


def _trace(module: nn.Module, *inputs: torch.Tensor):
    with FakeTensorMode(allow_non_fake_inputs=True):
        fake = [torch.empty(t.shape, dtype=t.dtype) for t in inputs]
        with torch.no_grad(), OpTracer(torch_flop_counter()) as tracer:
            module(*fake)
    return tracer.torch_counter.get_total_flops(), tracer.summary


def test_linear_flops_and_bytes_closed_form():
    flops, summary = _trace(TwoLinears().eval(), torch.zeros(3, 8))
    assert flops == 2 * 3 * 8 * 16 + 2 * 3 * 16 * 4
    assert summary.matrix_flops == flops
    # relu is elementwise: 1 FLOP per output element, kept apart from the matrix count.
    assert summary.elementwise_flops == 3 * 16
    by_op = summary.by_op()
    # addmm reads x (3x8), W^T (16x8), bias (16) and writes 3x16, all fp32.
    assert by_op["addmm"]["bytes"] == 4 * (3 * 8 + 16 * 8 + 16 + 3 * 16)
    assert by_op["mm"]["bytes"] == 4 * (3 * 16 + 4 * 16 + 3 * 4)


def test_cpu_sdpa_is_counted_not_zero():
    b, h, s, d = 2, 3, 5, 4
    q = torch.zeros(b, h, s, d)
    flops, summary = _trace(Attention(), q, q, q)
    assert flops == 2 * (b * h * s * s * d) * 2  # QK^T and AV, 2 FLOPs per multiply-add
    assert summary.attention_flops == flops


def test_fvcore_counts_sdpa_and_reports_macs():
    b, h, s, d = 1, 2, 6, 8
    q = torch.zeros(b, h, s, d)

    class Wrapped(nn.Module):
        def forward(self, q, k, v, return_dict=False):
            return (Attention()(q, k, v),)

    count = count_fvcore(Wrapped(), {"q": q, "k": q, "v": q})
    assert count.macs == 2 * b * h * s * s * d
    assert count.flops == 2 * count.macs


def test_unknown_arithmetic_op_is_listed_not_dropped():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.special.digamma(x)

    _, summary = _trace(Odd(), torch.zeros(4))
    assert "digamma" in summary.unknown_ops


def test_params_as_used_counts_a_shared_layer_per_call():
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(4, 4)

        def forward(self, x):
            for _ in range(3):
                x = self.layer(x)
            return x

    model = Shared()
    with CallCounter(model) as calls:
        model(torch.zeros(1, 4))
    assert calls.params_as_used() == 3 * 20


def _tiny(model_type: str, task: str = "base", **config) -> ModelSpec:
    modality = "vision" if model_type in {"vit", "deit"} else "text"
    return ModelSpec(id=f"tiny-{model_type}", model_type=model_type, task=task, modality=modality, config=config)


TINY = {
    "bert": _tiny(
        "bert", hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128, vocab_size=500
    ),
    "gpt2": _tiny("gpt2", "causal-lm", n_embd=64, n_layer=4, n_head=4, vocab_size=500),
    "llama": _tiny(
        "llama",
        "causal-lm",
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=160,
        vocab_size=500,
    ),
    "distilbert": _tiny("distilbert", dim=64, n_layers=4, n_heads=4, hidden_dim=128, vocab_size=500),
    "vit": _tiny(
        "vit",
        "image-classification",
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=128,
        image_size=32,
        patch_size=8,
        num_labels=10,
    ),
    "deberta-v2": resolve("deberta-v3-base"),  # published config: disentangled attention
    "t5": _tiny("t5", "seq2seq-lm", d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=3, vocab_size=300),
    "bart": _tiny(
        "bart",
        "seq2seq-lm",
        d_model=32,
        encoder_layers=3,
        decoder_layers=3,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        vocab_size=300,
    ),
    "mixtral": _tiny(
        "mixtral",
        "causal-lm",
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=96,
        vocab_size=500,
        num_local_experts=4,
        num_experts_per_tok=2,
    ),
}
TINY_WORKLOAD = Workload(batch_size=2, seq_len=16, image_size=32)


@pytest.mark.parametrize("name", sorted(TINY))
def test_depth_scaling_equals_full_count(name):
    spec = TINY[name]
    if name == "mixtral":
        spec = ModelSpec(**{**spec.__dict__, "families": ("sparse-moe", "decoder")})
    full = profile_static(spec, TINY_WORKLOAD, depth_scaling=False)
    scaled = profile_static(spec, TINY_WORKLOAD, depth_scaling=True)
    for field in (
        "flops",
        "training_flops",
        "memory_traffic_bytes",
        "training_memory_traffic_bytes",
        "attention_flops",
        "elementwise_flops",
        "flops_by_counter",
        "params",
    ):
        assert getattr(scaled, field) == getattr(full, field), field
    assert len(scaled.op_records) == len(full.op_records)


# Types added to depth scaling later, without a closed form (so only the scaling test takes them).
TINY_SCALED = {
    "phi3": _tiny(
        "phi3",
        "causal-lm",
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=96,
        vocab_size=500,
        pad_token_id=0,
    ),
    "dinov2": ModelSpec(
        id="tiny-dinov2",
        model_type="dinov2",
        task="base",
        modality="vision",
        config={"hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "image_size": 32, "patch_size": 8},
    ),
    "albert": _tiny(
        "albert",
        "base",
        embedding_size=32,
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=96,
        vocab_size=500,
    ),
    "whisper": ModelSpec(
        id="tiny-whisper",
        model_type="whisper",
        task="base",
        modality="audio",
        config={
            "d_model": 64,
            "encoder_layers": 3,
            "decoder_layers": 3,
            "encoder_attention_heads": 4,
            "decoder_attention_heads": 4,
            "encoder_ffn_dim": 96,
            "decoder_ffn_dim": 96,
            "num_mel_bins": 16,
            "max_source_positions": 50,
            "vocab_size": 300,
            "pad_token_id": 0,
            "bos_token_id": 0,
            "eos_token_id": 0,
            "decoder_start_token_id": 0,
        },
    ),
}


@pytest.mark.parametrize("name", sorted(TINY_SCALED))
def test_depth_scaling_equals_full_count_for_later_types(name):
    full = profile_static(TINY_SCALED[name], TINY_WORKLOAD, depth_scaling=False)
    scaled = profile_static(TINY_SCALED[name], TINY_WORKLOAD, depth_scaling=True)
    assert any("scaled to" in note for note in scaled.notes), scaled.notes
    for field in ("flops", "training_flops", "memory_traffic_bytes", "flops_by_counter", "params"):
        assert getattr(scaled, field) == getattr(full, field), field


def test_albert_with_more_than_one_group_of_shared_layers_is_counted_in_full():
    spec = ModelSpec(
        **{**TINY_SCALED["albert"].__dict__, "config": {**TINY_SCALED["albert"].config, "num_hidden_groups": 2}}
    )
    profile = profile_static(spec, TINY_WORKLOAD)
    assert profile.error is None and not any("scaled to" in note for note in profile.notes), profile.notes
    assert profile.params.total == profile_static(spec, TINY_WORKLOAD, depth_scaling=False).params.total


@pytest.mark.parametrize("name", sorted(TINY))
def test_three_counters_agree_on_tiny_transformers(name):
    profile = profile_static(TINY[name], TINY_WORKLOAD)
    assert profile.error is None
    assert set(profile.flops_by_counter) == {"torch", "fvcore", "analytic"}
    for counter, diff in profile.counter_differences.items():
        assert abs(diff) < 0.02, (counter, profile.notes)
    assert profile.training_flops > 2 * profile.flops


def test_bert_closed_form_by_hand():
    s, d, f, layers, b = 16, 64, 128, 4, 2
    per_seq = layers * (4 * s * d * d + 2 * s * s * d + 2 * s * d * f) + d * d  # + pooler on [CLS]
    config = {"hidden_size": d, "num_hidden_layers": layers, "intermediate_size": f}
    assert analytic_count(TINY["bert"], TINY_WORKLOAD, config).macs == b * per_seq


def test_moe_active_params_and_per_token_compute():
    spec = ModelSpec(**{**TINY["mixtral"].__dict__, "families": ("sparse-moe", "decoder")})
    profile = profile_static(spec, TINY_WORKLOAD)
    experts = 4 * 4 * (2 * 96 * 64 + 64 * 96)  # layers x experts x (gate_up + down)
    assert profile.params.total - profile.params.active == experts - experts * 2 // 4
    dense = ModelSpec(**{**spec.__dict__, "config": {**spec.config, "num_local_experts": 2}})
    # Two of four experts per token cost what two of two do: compute depends on top-k, not on E,
    # apart from the router (64 -> E per token).
    router_diff = 2 * TINY_WORKLOAD.batch_size * 16 * 64 * 2 * 4
    assert profile.flops - profile_static(dense, TINY_WORKLOAD).flops == router_diff


def test_giant_profiles_without_memory():
    profile = profile_static("gpt3-175b", Workload(seq_len=64))
    assert profile.params.total > 170e9
    assert profile.flops_by_counter["fvcore"] == profile.flops
    assert abs(profile.counter_differences["analytic"]) < 0.02


def test_weight_bytes_per_dtype():
    counts = count_params(TwoLinears(), _tiny("bert"))
    assert counts.total == 8 * 16 + 16 + 16 * 4
    assert (
        profile_static(TINY["bert"], TINY_WORKLOAD).to_result().weight_bytes["int8"]
        == profile_static(TINY["bert"], TINY_WORKLOAD).params.total
    )


QWEN2 = {
    "hidden_size": 64,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 96,
    "vocab_size": 500,
}


def test_per_layer_lists_are_cut_with_the_depth_and_scaling_stays_exact():
    """A config listing each layer (``layer_types``) is no longer rejected by the 1- and 2-layer copies."""
    spec = _tiny("qwen2", "causal-lm", **QWEN2, layer_types=["full_attention"] * 4)
    scaled = profile_static(spec, TINY_WORKLOAD, forward_only=True)
    full = profile_static(spec, TINY_WORKLOAD, depth_scaling=False, forward_only=True)
    assert any("scaled to 4 identical layers" in note for note in scaled.notes)
    assert (scaled.flops, scaled.params, scaled.memory_traffic_bytes) == (
        full.flops,
        full.params,
        full.memory_traffic_bytes,
    )


def test_layers_that_differ_are_counted_at_full_depth_and_say_so():
    mixed = ["sliding_attention", "full_attention"] * 2
    spec = _tiny("qwen2", "causal-lm", **QWEN2, layer_types=mixed, use_sliding_window=True, sliding_window=8)
    profile = profile_static(spec, TINY_WORKLOAD, forward_only=True)
    assert any("Counted at full depth" in note and "layer_types" in note for note in profile.notes)
    with pytest.raises(ValueError, match="per-layer lists differ"):
        profile_static(spec, TINY_WORKLOAD, depth_scaling=True, forward_only=True)


def test_a_data_dependent_op_is_named_and_sends_counting_to_real_tensors():
    from efficiency.counters.forward import data_dependent_op as _data_dependent_op

    assert _data_dependent_op(RuntimeError("aten._local_scalar_dense.default")) == "aten._local_scalar_dense.default"
    assert _data_dependent_op(RuntimeError("aten.nonzero.default: data-dependent output")) == "aten.nonzero.default"
    assert _data_dependent_op(RuntimeError("shapes cannot be multiplied")) is None


@pytest.mark.parametrize("depth", [-3, -1])
def test_the_closed_form_never_reports_a_negative_count(depth):
    assert analytic_count(TINY["bert"], TINY_WORKLOAD, {**TINY["bert"].config, "num_hidden_layers": depth}) is None


ONE_PASS_MODELS = {
    "resnet": ModelSpec(
        id="tiny-resnet",
        model_type="resnet",
        task="base",
        modality="vision",
        config={"embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1], "layer_type": "basic"},
    ),
    # Attention written as matmuls and softmax (MobileViT's, Switch's): the same kernels with or without grad.
    "mobilevit": ModelSpec(
        id="tiny-mobilevit",
        model_type="mobilevit",
        task="base",
        modality="vision",
        config={"hidden_sizes": [16, 24, 32], "neck_hidden_sizes": [8, 8, 16, 16, 24, 32, 64], "image_size": 64},
    ),
    "switch": _tiny(
        "switch_transformers",
        d_model=32,
        d_ff=64,
        d_kv=8,
        num_heads=4,
        num_layers=2,
        num_sparse_encoder_layers=1,
        num_sparse_decoder_layers=1,
        num_experts=4,
        vocab_size=300,
    ),
}


@pytest.mark.parametrize("name", sorted(ONE_PASS_MODELS))
def test_one_pass_counts_equal_two_passes(monkeypatch, name):
    """The one-pass shortcut (one forward with grad, then its backward) for models without SDPA counts exactly what
    the forward pass and the separate forward+backward pass count, op for op."""
    from efficiency.counters import forward

    spec = ONE_PASS_MODELS[name]
    workload = Workload(batch_size=2, image_size=64, seq_len=16)
    assert forward._one_pass_fits(build_model(spec, device="meta"))
    passes = []
    monkeypatch.setattr(forward, "_one_pass", lambda *a, _real=forward._one_pass: passes.append(1) or _real(*a))
    one = profile_static(spec, workload, depth_scaling=False)
    assert passes, "the one-pass shortcut was not taken"
    monkeypatch.setattr(forward, "ONE_PASS", False)
    two = profile_static(spec, workload, depth_scaling=False)
    for field in ("flops", "training_flops", "memory_traffic_bytes", "training_memory_traffic_bytes", "params"):
        assert getattr(one, field) == getattr(two, field), field
    assert one.training_flops > 2 * one.flops
    assert one.flops_by_counter == two.flops_by_counter
    assert [(r.op, r.flops, r.bytes_read, r.bytes_written) for r in one.op_records] == [
        (r.op, r.flops, r.bytes_read, r.bytes_written) for r in two.op_records
    ]


def test_one_pass_is_refused_where_sdpa_runs():
    """SDPA takes its math path when its mask needs a gradient (a learned position bias: Swin's, T5's), so a forward
    with grad is not taken for the inference forward: a model whose config asks for SDPA gets two passes, and one
    whose forward runs SDPA anyway is refused after its forward."""
    from efficiency.counters import forward

    vit = build_model(TINY_SCALED["dinov2"], device="meta")
    assert vit.config._attn_implementation == "sdpa" and not forward._one_pass_fits(vit)
    with FakeTensorMode(allow_non_fake_inputs=True):
        net = Attention()
        q = torch.empty(2, 3, 5, 4, requires_grad=True)
        assert forward._one_pass(net, {"q": q, "k": q, "v": q}) is None


def test_torch_counter_totals_are_the_same_without_its_module_tracker():
    """The profile keeps torch's counter's totals only; its per-module tracker (hooks on every module call and its
    backward) is left out for speed, which must not change a count, forward or backward."""
    spec = ModelSpec(
        id="tiny-vit",
        model_type="vit",
        task="base",
        modality="vision",
        config={"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
    )
    totals = {}
    for per_module in (True, False):
        net = build_model(spec, device="meta")
        with FakeTensorMode(allow_non_fake_inputs=True):
            net = net.to_empty(device="cpu")
            pixels = torch.empty(2, 3, 224, 224)
            with torch_flop_counter(per_module) as forward:
                output = net(pixel_values=pixels).last_hidden_state
            with torch_flop_counter(per_module) as backward:
                output.sum().backward()
        totals[per_module] = (forward.get_total_flops(), backward.get_total_flops())
        assert set(forward.get_flop_counts()) >= {"Global"}
        assert (len(forward.get_flop_counts()) > 1) is per_module  # modules only when asked
    assert totals[True] == totals[False] and min(totals[False]) > 0


@pytest.mark.parametrize("model_type", ["vit", "swin"])
def test_torch_counter_fed_by_the_tracer_counts_what_its_own_mode_counts(model_type):
    """The profile hands each op the tracer runs to torch's counter (one dispatch mode, not two stacked): its
    per-op counts, forward and backward, must be those of torch's counter running as its own mode under the
    tracer, and the tracer's records the same with or without it."""
    config = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    if model_type == "swin":
        config = {"embed_dim": 16, "depths": [2, 2], "num_heads": [2, 4], "window_size": 7}
    spec = ModelSpec(id=f"tiny-{model_type}", model_type=model_type, task="base", modality="vision", config=config)
    counts, records = {}, {}
    for fed in (True, False):
        net = build_model(spec, device="meta")
        with FakeTensorMode(allow_non_fake_inputs=True):
            net = net.to_empty(device="cpu")
            pixels = torch.empty(2, 3, 224, 224)
            totals, ops = [], []
            for backward in (False, True):
                if fed:
                    with OpTracer(torch_flop_counter()) as tracer:
                        output = net(pixel_values=pixels).last_hidden_state
                        if backward:
                            output.sum().backward()
                    counter = tracer.torch_counter
                else:
                    with torch_flop_counter() as counter, OpTracer() as tracer:
                        output = net(pixel_values=pixels).last_hidden_state
                        if backward:
                            output.sum().backward()
                totals.append(counter.get_flop_counts()["Global"])
                ops.append(
                    [(r.op, r.flops, r.elementwise_flops, r.bytes_read, r.bytes_written) for r in tracer.summary.ops]
                )
        counts[fed], records[fed] = totals, ops
    assert counts[True] == counts[False]
    assert all(sum(by_op.values()) > 0 for by_op in counts[True])
    assert records[True] == records[False] and len(records[True][1]) > len(records[True][0]) > 0

"""The static profile's quick paths count exactly what the slow ones count (issue #18 item 7).

fvcore traces a conv model's convolutions on ``meta`` (``traceable_meta_convolutions``) instead of a real CPU
copy whose forward computes for real; the op tracer asks the dispatcher once per op whether it is composite.
Each test compares the quick path with the path it replaces; none times anything.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict

import pytest
import torch
from torch import nn

from efficiency.counters import static
from efficiency.counters.static import META_CONV_TRACE_ERROR, profile_static
from efficiency.counters.trace import _is_composite, traceable_meta_convolutions
from efficiency.specs import ModelSpec, Workload

aten = torch.ops.aten

TINY_CONV = {
    "resnet": ModelSpec(
        id="tiny-resnet",
        model_type="resnet",
        task="base",
        modality="vision",
        config={"embedding_size": 8, "hidden_sizes": [8, 16], "depths": [2, 1], "layer_type": "bottleneck"},
    ),
    "convnextv2": ModelSpec(
        id="tiny-convnextv2",
        model_type="convnextv2",
        task="base",
        modality="vision",
        config={"hidden_sizes": [8, 16], "depths": [1, 2], "num_stages": 2},
    ),
    "mobilenet_v2": ModelSpec(
        id="tiny-mobilenet-v2",
        model_type="mobilenet_v2",
        task="base",
        modality="vision",
        config={"depth_multiplier": 0.25, "min_depth": 4},
    ),
    # its last stage is one window wide: tracing sets the window size to a tensor, on the modules it traced
    "swin": ModelSpec(
        id="tiny-swin",
        model_type="swin",
        task="base",
        modality="vision",
        config={
            "embed_dim": 4,
            "depths": [1, 1, 1, 2],
            "num_heads": [1, 1, 1, 1],
            "patch_size": 1,
            "window_size": 4,
            "image_size": 32,
        },
    ),
    "whisper": ModelSpec(
        id="tiny-whisper",
        model_type="whisper",
        task="base",
        modality="audio",
        config={
            "d_model": 16,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "encoder_attention_heads": 2,
            "decoder_attention_heads": 2,
            "encoder_ffn_dim": 32,
            "decoder_ffn_dim": 32,
            "num_mel_bins": 8,
            "vocab_size": 100,
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "decoder_start_token_id": 3,
            "max_source_positions": 1500,
            "max_target_positions": 32,
        },
    ),
}
TINY_WORKLOAD = Workload(batch_size=2, seq_len=8, image_size=32)


def _traced_nodes(module: nn.Module, x: torch.Tensor) -> list[tuple[str, list]]:
    """Each node torch.jit records: its kind and its tensor outputs' shapes (what fvcore's handles read)."""
    graph = torch.jit.trace(module, (x,), check_trace=False).inlined_graph
    nodes = []
    for node in graph.nodes():
        shapes = [o.type().sizes() for o in node.outputs() if isinstance(o.type(), torch._C.TensorType)]
        nodes.append((node.kind(), shapes))
    return nodes


CONVOLUTIONS = {
    "conv1d": (nn.Conv1d(4, 6, 3, stride=2, padding=1), (1, 4, 17)),
    "grouped dilated conv2d": (nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=2), (2, 4, 9, 9)),
    "depthwise conv2d": (nn.Conv2d(4, 4, 3, groups=4, bias=False), (1, 4, 8, 8)),
    "transposed conv2d": (nn.ConvTranspose2d(4, 3, 3, stride=2, output_padding=1), (1, 4, 5, 5)),
    "conv3d": (nn.Conv3d(2, 3, (1, 3, 3)), (1, 2, 2, 6, 6)),
}


@pytest.mark.parametrize("name", sorted(CONVOLUTIONS))
def test_a_meta_convolution_traces_as_the_same_node_as_on_the_cpu(name):
    """On meta, inside the block, torch.jit records the op and output shapes it records for a CPU convolution."""
    conv, shape = CONVOLUTIONS[name]
    module = nn.Sequential(conv, nn.ReLU()).eval()
    on_cpu = _traced_nodes(module, torch.zeros(shape))
    with traceable_meta_convolutions():
        on_meta = _traced_nodes(module.to("meta"), torch.empty(shape, device="meta"))
    assert [kind for kind, _ in on_meta].count("aten::_convolution") == 1
    assert on_meta == on_cpu


def test_the_meta_convolution_kernel_is_torchs_own_again_after_the_block():
    conv = nn.Conv2d(3, 4, 3, device="meta")
    with traceable_meta_convolutions():
        torch.jit.trace(conv, (torch.empty(1, 3, 8, 8, device="meta"),), check_trace=False)
    with pytest.raises(TypeError, match=META_CONV_TRACE_ERROR):
        torch.jit.trace(conv, (torch.empty(1, 3, 8, 8, device="meta"),), check_trace=False)


def _profile_fields(spec: ModelSpec) -> tuple[dict, list]:
    """Everything the profile reports but its timings, and its op records."""
    profile = profile_static(spec, TINY_WORKLOAD)
    fields = profile.to_result().to_dict()
    fields.pop("timings_s")
    return fields, [asdict(record) for record in profile.op_records]


@pytest.mark.parametrize("name", sorted(TINY_CONV))
def test_fvcore_on_meta_counts_what_the_real_cpu_copy_counts(name, monkeypatch):
    """The whole profile of a conv model, fvcore's count included, is the same with the meta trace as with the real
    CPU copy it replaces (the path with torch's own meta convolution kernel)."""
    spec = TINY_CONV[name]
    built: list[str] = []
    real_build = static.build_model
    monkeypatch.setattr(static, "build_model", lambda *a, **k: built.append(k.get("device")) or real_build(*a, **k))
    quick = _profile_fields(spec)
    assert "fvcore" in quick[0]["flops_by_counter"], quick[0]["counter_errors"]
    assert "cpu" not in built  # no real copy was built
    assert not any("Counted on real tensors" in note for note in quick[0]["notes"])  # the fake passes ran
    monkeypatch.setattr(static, "traceable_meta_convolutions", contextlib.nullcontext)
    usual = _profile_fields(spec)
    assert "cpu" in built  # the usual path did build the real CPU copy
    path_note = "fvcore traced a real CPU copy"  # the usual path's note on how fvcore counted
    assert [n for n in quick[0].pop("notes") if path_note not in n] == [
        n for n in usual[0].pop("notes") if path_note not in n
    ]
    assert quick == usual


def test_a_failing_meta_trace_falls_back_to_a_real_copy_and_says_why(monkeypatch):
    """A meta trace that fails for a reason real tensors avoid: one real CPU copy counts it, the same count, and
    its note names the meta failure; any other failure is fvcore's own and is raised, not retried."""

    def failing(message):
        @contextlib.contextmanager
        def patched():
            raise RuntimeError(message)
            yield  # a generator, so contextmanager accepts it; never reached

        return patched

    spec = TINY_CONV["resnet"]
    expected = static._fvcore_count(static.build_model(spec, device="meta"), spec, TINY_WORKLOAD)
    monkeypatch.setattr(static, "traceable_meta_convolutions", failing("Cannot copy out of meta tensor; no data!"))
    counted = static._fvcore_count(static.build_model(spec, device="meta"), spec, TINY_WORKLOAD)
    assert counted.macs == expected.macs and counted.by_operator == expected.by_operator
    assert counted.note.startswith("fvcore traced a real CPU copy") and "Cannot copy out of meta tensor" in counted.note
    monkeypatch.setattr(static, "traceable_meta_convolutions", failing("an error of fvcore's own"))
    with pytest.raises(RuntimeError, match="an error of fvcore's own"):
        static._fvcore_count(static.build_model(spec, device="meta"), spec, TINY_WORKLOAD)


def test_the_composite_check_asks_the_dispatcher_once_per_op(monkeypatch):
    known: dict = {}
    assert _is_composite(aten.linear.default, known) is True  # linear decomposes into addmm / mm
    assert _is_composite(aten.mm.default, known) is False
    assert _is_composite(torch.ops.prim.device.default, known) is False  # prims have no kernels to ask about

    def no_more_questions(*args):
        raise AssertionError("asked the dispatcher again")

    monkeypatch.setattr(torch._C, "_dispatch_has_kernel_for_dispatch_key", no_more_questions)
    assert _is_composite(aten.linear.default, known) is True
    assert _is_composite(aten.mm.default, known) is False

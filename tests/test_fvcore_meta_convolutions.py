"""fvcore traces convolutions on ``meta`` (issue #14: hybrid Mamba/MoE types whose real copy is too large, and every
CNN without a real CPU copy), in a child process; a bool ``scatter`` value no longer stops torch.jit.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
import torch
from torch import nn

from efficiency.counters import fvcore_counter
from efficiency.counters.fvcore_counter import CountApart, TracedApartError, count_fvcore, error_text
from efficiency.counters.static import profile_static
from efficiency.specs import Workload


class _Convs(nn.Module):
    """Every convolution kind a transformers model uses: 2-d strided and grouped, a depthwise 1-d (Mamba's), and a
    transposed one (segmentation heads)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.grouped = nn.Conv2d(8, 16, 3, groups=2, bias=False)
        self.depthwise = nn.Conv1d(16, 16, 4, groups=16, padding=3)
        self.up = nn.ConvTranspose2d(16, 4, 2, stride=2)

    def forward(self, pixel_values, return_dict=False):
        x = self.grouped(torch.relu(self.conv(pixel_values)))
        batch, channels, height, width = x.shape
        line = self.depthwise(x.flatten(2))[..., : height * width]
        return (self.up(line.reshape(batch, channels, height, width)),)


def test_convolutions_trace_on_meta_with_the_count_of_real_tensors():
    real = _Convs()
    on_cpu = count_fvcore(real, {"pixel_values": torch.randn(2, 3, 16, 16)})
    on_meta = count_fvcore(_Convs().to("meta"), {"pixel_values": torch.empty(2, 3, 16, 16, device="meta")})
    assert on_meta == on_cpu
    assert on_meta.by_operator["conv"] > 0 and on_meta.macs == on_cpu.macs
    # outside a trace, a meta convolution is torch's own (the shape eager would give)
    out = real.to("meta")(torch.empty(2, 3, 16, 16, device="meta"))[0]
    assert out.shape == _Convs()(torch.randn(2, 3, 16, 16))[0].shape


def test_a_cnn_is_counted_by_fvcore_on_meta_without_a_real_copy():
    profile = profile_static("resnet-18", Workload(batch_size=1, image_size=64))
    assert profile.flops_by_counter["fvcore"] == profile.flops_by_counter["torch"]
    assert not any("real CPU copy" in note for note in profile.notes), profile.notes


def test_a_count_apart_equals_the_count_here_and_leaves_the_model_untouched():
    model = _Convs().to("meta")
    inputs = {"pixel_values": torch.empty(1, 3, 16, 16, device="meta")}
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    assert CountApart(model, inputs).result() == count_fvcore(_Convs().to("meta"), inputs)
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == hooks


class _Fails(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.linear = nn.Linear(4, 4)

    def forward(self, x, return_dict=False):
        if self.how == "item":
            x = x * x.sum().item()
        elif self.how == "hang":
            time.sleep(60)
        elif self.how == "crash":
            os.kill(os.getpid(), signal.SIGKILL)  # (as a segfault would)
        return (self.linear(x),)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the count runs here where there is no fork")
def test_a_failure_apart_comes_back_as_its_one_line_and_a_crash_as_the_signal():
    meta = {"x": torch.empty(2, 4, device="meta")}
    with pytest.raises(TracedApartError) as failed:
        CountApart(_Fails("item").to("meta"), meta).result()
    assert error_text(failed.value) == "RuntimeError: Tensor.item() cannot be called on meta tensors"
    with pytest.raises(TracedApartError, match=r"crashed its process \(signal SIGKILL\)"):
        CountApart(_Fails("crash").to("meta"), meta).result()
    assert CountApart(_Fails("none").to("meta"), meta).result().macs == 2 * 4 * 4  # this process goes on


class _BoolScatter(nn.Module):
    """DeepSeek-V3.2's sparse-attention mask: ``scatter(-1, index, False)`` with a bool value."""

    def forward(self, scores, return_dict=False):
        top = torch.topk(scores, 2, dim=-1).indices
        mask = torch.ones_like(scores, dtype=torch.bool).scatter(-1, top, False)
        keep = torch.zeros_like(scores, dtype=torch.bool)
        keep.scatter_(-1, top, True)
        return (scores.masked_fill(mask & ~keep, 0.0) @ scores.transpose(-1, -2),)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_a_bool_scatter_value_no_longer_stops_the_trace(device):
    scores = torch.randn(2, 4, 8) if device == "cpu" else torch.empty(2, 4, 8, device="meta")
    count = count_fvcore(_BoolScatter(), {"scores": scores})
    assert count.macs == 2 * 4 * 4 * 8 and count.skipped_ops == {}
    # the patch lasts for the trace only, and the mask it builds is the same
    assert torch.Tensor.scatter is torch._C.TensorBase.scatter
    index = torch.tensor([[1], [0]])
    expected = torch.tensor([[True, False], [False, True]])
    assert torch.equal(torch.ones(2, 2, dtype=torch.bool).scatter(-1, index, False), expected)


class _ScaledBySize(nn.Module):
    """TVP's position embeddings: ``interpolate`` with a scale computed from the input's size, which torch.jit hands
    out as tensors, so the usual trace fails."""

    def forward(self, x, return_dict=False):
        height, width = x.shape[-2:]
        y = nn.functional.interpolate(x, scale_factor=(height / 4, width / 4), mode="bicubic", align_corners=False)
        return (y @ y.transpose(-1, -2),)


def test_a_trace_broken_by_size_tensors_is_counted_with_sizes_as_numbers_the_way_tried_first_apart():
    x = torch.empty(1, 2, 8, 8, device="meta")
    with pytest.raises(TypeError, match="upsample_bicubic2d"):
        count_fvcore(_ScaledBySize(), {"x": x})  # in this process: torch.jit's size tensors, its usual way
    count = CountApart(_ScaledBySize(), {"x": x}).result()
    assert count.macs == 2 * 16 * 16 * 16  # (1, 2, 16, 16) @ (1, 2, 16, 16): the upsampled size, counted
    assert count.sizes == "numbers" and count.first_failure is None and count.note is None
    assert "size" not in torch.Tensor.__dict__ and "shape" not in torch.Tensor.__dict__  # only in the child


class _CeilOfSize(nn.Module):
    """MobileViT's unfolding: ``torch.ceil(height / patch)``, which takes the size as the tensor torch.jit hands out
    and fails with a plain number."""

    def forward(self, x, return_dict=False):
        rounded = int(torch.ceil(x.shape[-1] / 3) * 3)  # 8 -> 9
        y = nn.functional.pad(x, (0, rounded - x.shape[-1]))
        return (y @ y.transpose(-1, -2),)


def test_a_model_whose_python_needs_size_tensors_is_counted_with_them_and_remembered(monkeypatch):
    monkeypatch.setattr(fvcore_counter, "_NEEDS_SIZE_TENSORS", set())
    x = torch.empty(1, 2, 8, 8, device="meta")
    expected = count_fvcore(_CeilOfSize(), {"x": x})  # size tensors in this process
    assert expected.macs == 2 * 8 * 8 * 9
    first = CountApart(_CeilOfSize(), {"x": x}).result()
    assert first == expected and first.sizes == "tensors" and "ceil" in first.first_failure
    assert fvcore_counter._NEEDS_SIZE_TENSORS == {f"{__name__}._CeilOfSize"}  # learnt from the child, kept here
    again = CountApart(_CeilOfSize(), {"x": x}).result()
    assert again == expected and again.sizes == "tensors" and again.first_failure is None  # no failed try first


def test_sizes_as_numbers_and_size_tensors_count_the_same(monkeypatch):
    monkeypatch.setattr(fvcore_counter, "_NEEDS_SIZE_TENSORS", set())
    inputs = {"pixel_values": torch.empty(1, 3, 16, 16, device="meta")}
    numbers = CountApart(_Convs().to("meta"), inputs).result()
    assert numbers.sizes == "numbers" and numbers == count_fvcore(_Convs().to("meta"), inputs)


class _BothFail(nn.Module):
    def forward(self, x, return_dict=False):
        if isinstance(x.shape[-1], int):
            raise ValueError("plain numbers refused")
        raise RuntimeError("size tensors refused")


def test_where_both_ways_fail_the_size_tensors_failure_is_the_reason(monkeypatch):
    monkeypatch.setattr(fvcore_counter, "_NEEDS_SIZE_TENSORS", set())
    with pytest.raises(TracedApartError, match="RuntimeError: size tensors refused"):
        CountApart(_BothFail(), {"x": torch.empty(2, 4, device="meta")}).result()


class _BoolFill(nn.Module):
    """UDOP's patch indices: ``full_like(x, True)``."""

    def forward(self, x, return_dict=False):
        keep = torch.full_like(x[..., 0], True).bool()
        return ((x * keep[..., None]) @ x.transpose(-1, -2),)


def test_a_bool_fill_value_no_longer_stops_the_trace():
    count = count_fvcore(_BoolFill(), {"x": torch.randn(2, 4, 8)})
    assert count.macs == 2 * 4 * 4 * 8 and count.note is None
    assert torch.full_like(torch.zeros(2), True).tolist() == [1.0, 1.0]  # restored: torch's own again


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the count runs here where there is no fork")
def test_a_child_that_never_answers_is_killed_at_its_timeout():
    pending = CountApart(_Fails("hang").to("meta"), {"x": torch.empty(2, 4, device="meta")})
    started = time.monotonic()
    with pytest.raises(TracedApartError, match=r"fvcore's trace did not finish within 1 s"):
        pending.result(timeout_s=1)
    assert time.monotonic() - started < 10 and pending.pid is None  # killed and reaped, not waited for


class _NormedConvs(nn.Module):
    """A MobileNet block's ops: convolutions, batch norm, ReLU6 (hardtanh), on a channels-last input too."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(8)
        self.act = nn.ReLU6()
        self.depthwise = nn.Conv2d(8, 8, 3, groups=8, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(8)

    def forward(self, pixel_values, return_dict=False):
        x = self.act(self.norm(self.conv(pixel_values)))
        return (self.act(self.norm2(self.depthwise(x.contiguous(memory_format=torch.channels_last)))),)


def test_batch_norm_and_hardtanh_take_their_short_meta_kernels_only_in_fvcores_trace(monkeypatch):
    from efficiency.counters import fvcore_counter

    fvcore_counter.traceable_meta_kernels()
    inputs = torch.randn(2, 3, 16, 16)
    on_cpu = count_fvcore(_NormedConvs().eval(), {"pixel_values": inputs})
    on_meta = count_fvcore(_NormedConvs().eval().to("meta"), {"pixel_values": torch.empty(2, 3, 16, 16, device="meta")})
    assert on_meta == on_cpu and on_meta.by_operator["batch_norm"] > 0
    # the short kernels ran in that trace (each is looked up when called), and give torch's own output metadata
    calls: list[str] = []
    for name, (op, traced) in list(fvcore_counter._TRACED_META.items()):

        def spy(*args, _traced=traced, _name=name, **kwargs):
            calls.append(_name)
            return _traced(*args, **kwargs)

        monkeypatch.setitem(fvcore_counter._TRACED_META, name, (op, spy))
    count_fvcore(_NormedConvs().eval().to("meta"), {"pixel_values": torch.empty(2, 3, 16, 16, device="meta")})
    assert sorted(set(calls)) == ["hardtanh", "native_batch_norm"]
    # outside fvcore's trace: torch's own meta kernels, which give the same metadata as the short ones
    calls.clear()
    x = torch.empty(2, 8, 5, 5, device="meta").contiguous(memory_format=torch.channels_last)
    weight, stats = torch.empty(8, device="meta"), torch.empty(8, device="meta")
    for training in (False, True):
        own = torch.ops.aten.native_batch_norm(x, weight, weight, stats, stats, training, 0.1, 1e-5)
        short = fvcore_counter._traced_batch_norm(x, weight, weight, stats, stats, training, 0.1, 1e-5)
        for a, b in zip(own, short, strict=True):
            assert (a.shape, a.stride(), a.dtype) == (b.shape, b.stride(), b.dtype)
    own_tanh = torch.ops.aten.hardtanh(x, 0.0, 6.0)
    assert calls == [] and own_tanh.stride() == fvcore_counter._traced_elementwise(x, 0.0, 6.0).stride()


class _Normed(nn.Module):
    """A transformer block's ops on a 2-d input: addmm (a linear layer), layer norm with and without weights."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 6)
        self.norm = nn.LayerNorm(6)
        self.bare = nn.LayerNorm(6, elementwise_affine=False)

    def forward(self, x, return_dict=False):
        return (self.bare(self.linear(self.norm(x))),)


def test_layer_norm_and_addmm_short_meta_kernels_give_torchs_metadata_and_the_same_count(monkeypatch):
    from efficiency.counters import fvcore_counter

    fvcore_counter.traceable_meta_kernels()
    on_cpu = count_fvcore(_Normed(), {"x": torch.randn(4, 6)})
    calls: list[str] = []
    for name in ("native_layer_norm", "addmm"):
        op, traced = fvcore_counter._TRACED_META[name]

        def spy(*args, _traced=traced, _name=name, **kwargs):
            calls.append(_name)
            return _traced(*args, **kwargs)

        monkeypatch.setitem(fvcore_counter._TRACED_META, name, (op, spy))
    on_meta = count_fvcore(_Normed().to("meta"), {"x": torch.empty(4, 6, device="meta")})
    assert on_meta == on_cpu and on_meta.by_operator["linear"] > 0
    assert sorted(set(calls)) == ["addmm", "native_layer_norm"]
    calls.clear()
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.empty(6, 4, 5, device="meta", dtype=dtype).transpose(0, 1)  # not contiguous
        for weight in (None, torch.empty(5, device="meta", dtype=dtype)):
            own = torch.ops.aten.native_layer_norm(x, [5], weight, weight, 1e-5)
            short = fvcore_counter._traced_layer_norm(x, [5], weight, weight, 1e-5)
            for a, b in zip(own, short, strict=True):
                assert (a.shape, a.stride(), a.dtype) == (b.shape, b.stride(), b.dtype)
        mat1, mat2 = torch.empty(3, 4, device="meta", dtype=dtype), torch.empty(5, 4, device="meta", dtype=dtype).t()
        for bias in (torch.empty(5, device="meta", dtype=dtype), torch.empty(3, 5, device="meta", dtype=dtype)):
            own, short = torch.ops.aten.addmm(bias, mat1, mat2), fvcore_counter._traced_addmm(bias, mat1, mat2)
            assert (own.shape, own.stride(), own.dtype) == (short.shape, short.stride(), short.dtype)
    assert calls == []  # outside fvcore's trace, torch's own kernels
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        fvcore_counter._traced_addmm(bias, mat1, mat1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the count runs here where there is no fork")
def test_a_child_that_sent_its_count_is_reaped_without_the_caller_waiting_for_its_exit():
    import psutil

    model = _Convs().to("meta")
    pending = CountApart(model, {"pixel_values": torch.empty(1, 3, 16, 16, device="meta")})
    pid = pending.pid
    assert pending.result() == count_fvcore(
        _Convs().to("meta"), {"pixel_values": torch.empty(1, 3, 16, 16, device="meta")}
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            psutil.Process(pid).status()  # a zombie until reaped
        except psutil.NoSuchProcess:
            return
        time.sleep(0.01)
    raise AssertionError(f"child {pid} was not reaped")

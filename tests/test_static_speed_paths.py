"""The op tracer's quick path counts exactly what the slow one counts (issue #18 item 7): it asks the dispatcher
once per op what the op is (composite or not, its name, its formula), not once per call. Nothing here times anything.
"""

from __future__ import annotations

import torch

from efficiency.counters import trace
from efficiency.counters.trace import _facts

aten = torch.ops.aten


def test_what_an_op_is_is_asked_of_the_dispatcher_once_per_op(monkeypatch):
    monkeypatch.setattr(trace, "_FACTS", {})
    assert _facts(aten.bmm.default).attention is True
    assert _facts(aten.linear.default).composite is True  # linear decomposes into addmm / mm
    assert _facts(aten.mm.default).composite is False
    assert _facts(aten.mm.default).formula is not None and _facts(aten.add_.Tensor).name == "add"
    assert _facts(torch.ops.prim.device.default).composite is False  # prims have no kernels to ask about

    def no_more_questions(*args):
        raise AssertionError("asked the dispatcher again")

    monkeypatch.setattr(torch._C, "_dispatch_has_kernel_for_dispatch_key", no_more_questions)
    assert _facts(aten.linear.default).composite is True
    assert _facts(aten.mm.default).composite is False


class _Tied(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.norm = torch.nn.BatchNorm1d(4)
        self.head = torch.nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight  # tied, as a language model's head
        self.frozen = torch.nn.Parameter(torch.ones(4), requires_grad=False)

    def forward(self, ids):
        return self.head(self.norm(self.embed(ids).transpose(1, 2)).transpose(1, 2) * self.frozen)


def _the_old_way(model: torch.nn.Module) -> None:
    """What ``_fake_parameters`` did before: a factory op and ``nn.Parameter`` (a ``detach``) through the mode."""
    memo: dict[int, torch.Tensor] = {}
    for module in model.modules():
        for name, param in list(module._parameters.items()):
            if param is not None and id(param) not in memo:
                empty = torch.empty(param.shape, dtype=param.dtype, device="cpu")
                memo[id(param)] = torch.nn.Parameter(empty, requires_grad=param.requires_grad)
            if param is not None:
                module._parameters[name] = memo[id(param)]
        for name, buf in list(module._buffers.items()):
            if buf is not None:
                memo.setdefault(id(buf), torch.zeros(buf.shape, dtype=buf.dtype, device="cpu"))
                module._buffers[name] = memo[id(buf)]


def test_fake_parameters_wrap_meta_tensors_as_the_modes_own_factory_would(monkeypatch):
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

    from efficiency.counters.forward import torch_flop_counter
    from efficiency.counters.static import _fake_parameters, _record_key

    records = []
    for swap in (_fake_parameters, _the_old_way):
        with torch.device("meta"):
            model = _Tied()
        with FakeTensorMode(allow_non_fake_inputs=True) as mode:
            swap(model)
            params = dict(model.named_parameters(remove_duplicate=False))
            assert params["head.weight"] is params["embed.weight"]  # still tied
            for name, tensor in [*params.items(), *model.named_buffers()]:
                assert type(tensor) is FakeTensor and tensor.fake_mode is mode and tensor.device.type == "cpu", name
            assert params["embed.weight"].requires_grad and not params["frozen"].requires_grad
            assert all(getattr(p, "_is_param", False) for p in params.values())
            with trace.OpTracer(torch_flop_counter()) as tracer:
                model(torch.zeros(2, 3, dtype=torch.long)).sum().backward()
            assert params["embed.weight"].grad is not None and params["frozen"].grad is None
        records.append([_record_key(r) for r in tracer.summary.ops])
    assert records[0] == records[1] and len(records[0]) > 10
    with torch.device("meta"):
        try:
            _fake_parameters(_Tied())
        except RuntimeError as exc:
            assert "FakeTensorMode" in str(exc)
        else:
            raise AssertionError("no FakeTensorMode: refused")


class _Batched(torch.nn.Module):
    """A linear layer on a 3-d input: matmul's reshapes end in ``_unsafe_view``, forward and backward."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(8, 6)
        self.other = torch.nn.Parameter(torch.ones(6, 5))

    def forward(self, x):
        return torch.matmul(self.linear(x), self.other).sum()


def _fake_records(monkeypatch, shortcut: bool) -> tuple[list, int]:
    from torch._subclasses.fake_tensor import FakeTensorMode

    from efficiency.counters.forward import torch_flop_counter
    from efficiency.counters.static import _fake_parameters, _record_key

    calls = []
    real_view = trace._VIEW

    def counted_view(*args, **kwargs):
        calls.append(args[1])
        return real_view(*args, **kwargs)

    monkeypatch.setattr(trace, "_VIEW", counted_view)
    monkeypatch.setattr(trace, "_UNSAFE_VIEW", trace._UNSAFE_VIEW if shortcut else object())
    with torch.device("meta"):
        model = _Batched()
    with FakeTensorMode(allow_non_fake_inputs=True):
        _fake_parameters(model)
        with trace.OpTracer(torch_flop_counter()) as tracer:
            model(torch.empty(4, 3, 8)).backward()
        grads = [tuple(p.grad.shape) for p in model.parameters()]
    return [_record_key(r) for r in tracer.summary.ops] + grads, len(calls)


def test_unsafe_view_on_fake_tensors_is_answered_as_a_view_with_the_same_records(monkeypatch):
    quick, shortcuts = _fake_records(monkeypatch, shortcut=True)
    slow, none = _fake_records(monkeypatch, shortcut=False)
    assert shortcuts >= 1 and none == 0  # matmul's reshape of its result took the short way
    assert quick == slow and len(quick) > 5


class _Mixed(torch.nn.Module):
    """Ops of every output kind: one tensor (conv, mm), several (batch norm in training, layer norm, max pool with
    indices), views (flatten, transpose, expand, select, slice, unsqueeze), in-place (relu_, and mul_ on a view, which
    autograd must see as its base's), a constant the forward makes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.norm = torch.nn.BatchNorm2d(4)
        self.pool = torch.nn.MaxPool2d(2, return_indices=True)
        self.layer_norm = torch.nn.LayerNorm(4)
        self.head = torch.nn.Linear(4, 3)

    def forward(self, x):
        x = torch.relu_(self.norm(self.conv(x)))
        x, _ = self.pool(x)
        x = self.layer_norm(x.flatten(2).transpose(1, 2))
        scale = torch.tensor(2.0)  # a constant (one element): its uses are not kept
        out = self.head(x) * scale
        out.transpose(1, 2)[:, 1:].mul_(3)  # in place on a view of a view: the base's grad must follow
        wide = out[:, 0].unsqueeze(1).expand(-1, 4, -1)
        return out.sum() + wide.sum()


def _mixed_records(passes: int) -> list:
    from torch._subclasses.fake_tensor import FakeTensorMode

    from efficiency.counters.forward import torch_flop_counter
    from efficiency.counters.static import _fake_parameters, _record_key

    runs = []
    for _ in range(passes):
        with torch.device("meta"):
            model = _Mixed().train()
        with FakeTensorMode(allow_non_fake_inputs=True):
            _fake_parameters(model)
            with trace.OpTracer(torch_flop_counter()) as tracer:
                model(torch.empty(2, 3, 8, 8)).backward()
            grads = [(tuple(p.grad.shape), p.grad.stride(), p.grad.dtype) for p in model.parameters()]
        runs.append(([_record_key(r) for r in tracer.summary.ops], grads, tracer.torch_counter.get_total_flops()))
    return runs


def test_fresh_ops_met_again_are_made_from_what_they_gave_with_the_same_records(monkeypatch):
    monkeypatch.setattr(trace, "_SHAPES", {})
    remade = []
    real_remade = trace._remade
    monkeypatch.setattr(trace, "_remade", lambda mode, shapes: remade.append(shapes) or real_remade(mode, shapes))
    first, again = _mixed_records(passes=2)
    assert remade and all(isinstance(kept, tuple) for kept in remade)
    assert any(is_tuple and len(kept) > 1 for is_tuple, kept in remade)  # several outputs (the norms, the pool)
    assert not any(key[0] in {aten.add_.Tensor, aten.relu_.default, aten.mul_.Tensor} for key in trace._SHAPES)
    monkeypatch.setattr(trace, "_SHAPES", {})
    monkeypatch.setattr(trace, "_remember", lambda key, out: None)  # nothing kept: every op through the mode
    monkeypatch.setattr(trace, "_remember_view", lambda key, out, base: None)
    remade.clear()
    (unkept,) = _mixed_records(passes=1)
    assert remade == []
    assert first == again == unkept and len(first[0]) > 15


def test_views_met_again_are_remade_on_their_base_with_the_same_records_and_grads(monkeypatch):
    monkeypatch.setattr(trace, "_SHAPES", {})
    remade = []
    real_remade = trace._remade_view

    def spy(mode, base, kept):
        out = real_remade(mode, base, kept)
        remade.append((out.untyped_storage()._cdata == base.untyped_storage()._cdata, out.shape))
        return out

    monkeypatch.setattr(trace, "_remade_view", spy)
    first, again = _mixed_records(passes=2)
    assert len(remade) >= 6 and all(shares for shares, _ in remade)  # every view remade on its base's storage
    kept = {key[0] for key, value in trace._SHAPES.items() if value is not None and value[0] == "view"}
    assert {aten.t.default, aten.transpose.int, aten.expand.default, aten.slice.Tensor, aten.select.int} <= kept
    monkeypatch.setattr(trace, "_SHAPES", {})
    monkeypatch.setattr(trace, "_remember_view", lambda key, out, base: None)  # views through the mode each time
    remade.clear()
    (unkept,) = _mixed_records(passes=1)
    assert remade == [] and first == again == unkept


def test_only_views_of_the_first_argument_taken_whole_are_kept(monkeypatch):
    from torch._subclasses.fake_tensor import FakeTensorMode

    views = [aten.view.default, aten.t.default, aten.transpose.int, aten.expand.default, aten.detach.default]
    assert all(trace._view_of_first(op) for op in views)
    assert not trace._view_of_first(aten._unsafe_view.default)  # answered apart, as FakeTensorMode does
    assert not trace._view_of_first(aten.transpose_.default)  # changes its input's view
    assert not trace._view_of_first(aten.split.Tensor)  # a list of views
    assert not trace._view_of_first(aten.mm.default)  # not a view
    assert not trace._facts(aten.reshape.default).view  # composite: decomposed before it could be kept
    monkeypatch.setattr(trace, "_SHAPES", {})
    with FakeTensorMode() as mode:
        fake = mode.from_tensor(torch.empty(2, 3))
        trace._remember_view(("conj",), torch.ops.aten._conj.default(torch.empty(2, dtype=torch.complex64)), fake)
        trace._remember_view(("other",), torch.empty(3, 2), fake)
        trace._remember_view(("t",), fake.t(), fake)
    assert trace._SHAPES[("conj",)] is None and trace._SHAPES[("other",)] is None  # a conjugate; another storage
    assert trace._SHAPES[("t",)][1][:3] == ((3, 2), (1, 3), 0)


def test_only_ops_with_fresh_outputs_are_kept_and_a_constant_is_never_keyed(monkeypatch):
    from torch._subclasses.fake_tensor import FakeTensorMode

    assert trace._fresh(aten.mm.default) and trace._fresh(aten.native_layer_norm.default)
    assert not trace._fresh(aten.t.default)  # a view
    assert not trace._fresh(aten.add_.Tensor) and not trace._fresh(aten.add.out)  # writes its input / its out
    assert not trace._fresh(aten.nonzero.default)  # its shape depends on values
    assert not trace._fresh(aten._local_scalar_dense.default)  # a number, not a tensor
    assert not trace._fresh(aten.split.Tensor)  # a list of views
    with FakeTensorMode():
        constant, plain = torch.tensor(2.0), torch.empty(2)  # one element: FakeTensorMode keeps its value
        assert constant.constant is not None
        assert trace._shape_key(aten.mul.Tensor, (constant, plain), {}) is None
        key = trace._shape_key(aten.mul.Tensor, (plain, 2), {})
        assert key is not None and key != trace._shape_key(aten.mul.Tensor, (plain, 2.0), {})  # 2 and 2.0 differ
        torch.set_default_dtype(torch.float64)
        try:
            assert trace._shape_key(aten.mul.Tensor, (plain, 2), {}) != key  # the default dtype can decide
        finally:
            torch.set_default_dtype(torch.float32)
    monkeypatch.setattr(trace, "_SHAPES", {("old",): None})
    monkeypatch.setattr(trace, "_SHAPES_LIMIT", 1)
    with FakeTensorMode():
        a = torch.empty(2, 3)
        trace._remember(("new",), a + 1)
    assert list(trace._SHAPES) == [("new",)]  # full: started again


def test_views_under_inference_mode_are_never_remade(monkeypatch):
    """A view of a normal tensor made under inference_mode (video trackers' forward) is a normal tensor sharing its
    base's version counter; remade afresh there it would be an inference tensor, which autograd's view bookkeeping
    refuses ("Cannot set version_counter for inference tensor", SAM 2 video)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from efficiency.counters.static import _fake_parameters

    monkeypatch.setattr(trace, "_SHAPES", {})
    with torch.device("meta"):
        model = torch.nn.Linear(3, 4)
    with FakeTensorMode(allow_non_fake_inputs=True):
        _fake_parameters(model)
        with trace.OpTracer(), torch.inference_mode():
            for _ in range(2):  # the second time the memo would answer
                out = torch.empty(2, 4, 3) + model.weight[None].expand(2, 4, 3)
                assert out.shape == (2, 4, 3)
    assert not any(value and value[0] == "view" for value in trace._SHAPES.values())

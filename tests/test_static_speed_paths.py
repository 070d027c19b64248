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

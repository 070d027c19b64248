"""The op tracer's quick path counts exactly what the slow one counts (issue #18 item 7): it asks the dispatcher
once per op whether the op is composite, not once per call. Nothing here times anything.
"""

from __future__ import annotations

import torch

from efficiency.counters.trace import _is_composite

aten = torch.ops.aten


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

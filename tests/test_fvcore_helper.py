"""The warm helper that traces conv models for fvcore in a process that profiles model after model: the same counts
as a child forked per count, reused from the second profile on, and the isolation of a child (a failed trace, a
crash, a hang each end that helper only; the next count gets a new one)."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

from efficiency.counters import fvcore_helper, static
from efficiency.counters.fvcore_counter import TracedApartError
from efficiency.counters.static import profile_static
from efficiency.specs import Workload

SMALL = Workload(image_size=64, seq_len=16)
SPEC = SimpleNamespace(model_type="test")  # what a helper is sent, for helpers whose answer a test sets


@pytest.fixture
def helpers(monkeypatch):
    """Helpers on (the suite turns them off), with this test's own pool; its helpers end with it."""
    monkeypatch.setattr(fvcore_helper, "ENABLED", True)
    monkeypatch.setattr(fvcore_helper, "_idle", [])
    monkeypatch.setattr(fvcore_helper, "_alive", {})
    monkeypatch.setattr(fvcore_helper, "_profiles", {})
    monkeypatch.setattr(fvcore_helper, "_without_convolutions", set())
    monkeypatch.setattr(fvcore_helper, "_pipe_ends", set())
    yield fvcore_helper
    for helper in fvcore_helper._idle:
        helper.end(kill=True)


def _counted_by(spy: list):
    real = fvcore_helper.HelperCount.result

    def result(self, *args, **kwargs):
        spy.append(self)
        return real(self, *args, **kwargs)

    return result


def test_a_process_profiling_again_counts_conv_models_in_one_reused_helper_with_the_same_counts(helpers, monkeypatch):
    monkeypatch.setattr(fvcore_helper, "ENABLED", False)
    forked = profile_static("microsoft/resnet-18", SMALL)  # a child forked per count
    monkeypatch.setattr(fvcore_helper, "ENABLED", True)
    fvcore_helper._profiles.clear()  # as in a process that has not profiled yet
    spy: list = []
    monkeypatch.setattr(fvcore_helper.HelperCount, "result", _counted_by(spy))
    first = profile_static("microsoft/resnet-18", SMALL)
    assert spy == [] and helpers._idle == []  # a process's first profile forks no helper
    second = profile_static("microsoft/resnet-18", SMALL)
    third = profile_static("microsoft/resnet-18", SMALL)
    assert len(spy) == 2 and len(helpers._idle) == 1 and helpers._idle[0].uses == 2  # one helper, used twice
    for profile in (first, second, third):
        assert profile.flops_by_counter == forked.flops_by_counter and profile.counter_errors == {}
        assert profile.fvcore_skipped_ops == forked.fvcore_skipped_ops and profile.notes == forked.notes


def test_a_model_without_convolutions_is_counted_here_and_its_type_not_asked_again(helpers):
    alone = profile_static("google/electra-small-discriminator", SMALL)
    assert helpers._idle == []  # the first profile: no helper, though it counted two copies (1 and 2 layers)
    helped = profile_static("google/electra-small-discriminator", SMALL)
    assert len(helpers._idle) == 1 and helpers._idle[0].uses == 1  # it built the model, said "here", came back
    assert helpers._without_convolutions == {"electra"}
    again = profile_static("google/electra-small-discriminator", SMALL)
    assert helpers._idle[0].uses == 1  # not asked again for this type
    assert alone.flops_by_counter == helped.flops_by_counter == again.flops_by_counter
    assert "fvcore" in alone.flops_by_counter and helped.counter_errors == {}


def _answering(monkeypatch, answer):
    """Helpers forked from now on answer with ``answer`` (a fork inherits the patch)."""
    monkeypatch.setattr(fvcore_helper, "_answer", answer)
    fvcore_helper._profiles[os.getpid()] = 2  # as in a second profile: an ask forks a helper


def test_a_failed_trace_ends_its_helper_and_the_next_count_gets_a_new_one(helpers, monkeypatch):
    _answering(monkeypatch, lambda spec, workload, overrides: (("error", "RuntimeError: boom"), True))
    pending = helpers.ask(SPEC, SMALL, {})
    first_pid = pending._helper.pid
    with pytest.raises(TracedApartError, match="RuntimeError: boom"):
        pending.result()
    assert helpers._idle == []
    again = helpers.ask(SPEC, SMALL, {})
    assert again._helper.pid != first_pid
    again.cancel()


def test_a_crashed_helper_is_one_failed_count(helpers, monkeypatch):
    _answering(monkeypatch, lambda spec, workload, overrides: os._exit(3))
    with pytest.raises(TracedApartError, match="crashed its helper process"):
        helpers.ask(SPEC, SMALL, {}).result()
    assert helpers._idle == []


def test_a_helper_that_sends_nothing_in_time_is_killed(helpers, monkeypatch):
    _answering(monkeypatch, lambda spec, workload, overrides: time.sleep(60))
    pending = helpers.ask(SPEC, SMALL, {})
    pid = pending._helper.pid
    began = time.monotonic()
    with pytest.raises(TracedApartError, match="did not finish within 1 s"):
        pending.result(timeout_s=1.0)
    assert time.monotonic() - began < 10
    assert _exited(pid) and helpers._idle == []


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie not yet reaped still answers kill(pid, 0)
        return stat.read().split()[2] != "Z"


def test_what_the_helper_could_not_build_is_counted_by_a_forked_child(helpers, monkeypatch):
    import torch

    _answering(monkeypatch, lambda spec, workload, overrides: (("unbuilt", "ValueError: no"), False))
    model = torch.nn.Conv2d(3, 4, 3).to("meta")
    inputs = {"input": torch.empty(1, 3, 8, 8, device="meta")}

    class _Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = model

        def forward(self, input, return_dict=False):
            return (self.conv(input),)

    count = helpers.ask(SPEC, SMALL, {}).bind(_Model(), inputs).result()
    assert count.macs == 4 * 6 * 6 * 3 * 3 * 3  # output elements x (input channels x kernel)
    assert len(helpers._idle) == 1  # it is still good for the next model


def test_a_helper_serves_only_the_process_that_forked_it_and_retires_after_its_uses(helpers, monkeypatch):
    _answering(monkeypatch, lambda spec, workload, overrides: (("unbuilt", "ValueError: no"), False))
    helpers.ask(SPEC, SMALL, {}).release()
    (helper,) = helpers._idle
    helper.owner = -1  # as a fork of this process sees its parent's helper
    other = helpers.ask(SPEC, SMALL, {})
    assert other._helper is not helper and helpers._idle == []
    other.release()
    monkeypatch.setattr(fvcore_helper, "MAX_USES", 2)
    (reused,) = helpers._idle
    helpers.ask(SPEC, SMALL, {}).release()
    assert reused.uses == 2 and helpers._idle == []  # retired
    for ended in (helper, reused):  # each left at the end of its requests (no other process holds their ends)
        assert _exited(ended.pid)
    os.waitpid(helper.pid, 0)  # the one this process "forgot" is reaped here (a fork would leave it to its parent)


def _exited(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not _exists(pid):
            return True
        time.sleep(0.05)
    return False


def test_the_count_pass_cancels_its_helper_when_the_profile_fails(helpers, monkeypatch):
    _answering(monkeypatch, lambda spec, workload, overrides: time.sleep(60))
    fvcore_helper._profiles[os.getpid()] = 1  # profile_static adds the second
    cancelled = []
    real_cancel = fvcore_helper.HelperCount.cancel
    monkeypatch.setattr(fvcore_helper.HelperCount, "cancel", lambda self: cancelled.append(1) or real_cancel(self))

    def broken(*args, **kwargs):
        raise RuntimeError("the build failed")

    monkeypatch.setattr(static, "build_model", broken)
    with pytest.raises(RuntimeError, match="the build failed"):
        profile_static("microsoft/resnet-18", SMALL)
    assert cancelled and helpers._idle == []

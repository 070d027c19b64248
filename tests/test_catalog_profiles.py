"""Every catalog entry profiles statically, weight-free, and its counters agree (acceptance of the engine core).

Text models run at 32 tokens to keep the suite quick; vision models at their published 224 px, where the
count must match the published GMACs x 2 within 2%.
"""

from __future__ import annotations

import pytest

from efficiency.counters.static import profile_static
from efficiency.models.catalog import list_models
from efficiency.specs import Workload

SPECS = list_models()


@pytest.mark.parametrize("spec", SPECS, ids=[s.id for s in SPECS])
def test_entry_profiles_without_error_and_counters_agree(spec):
    profile = profile_static(spec, Workload(seq_len=32, image_size=224))
    assert profile.error is None
    assert profile.counter_errors == {}
    assert profile.uncounted_ops == []
    for counter, difference in profile.counter_differences.items():
        assert abs(difference) <= 0.02, (counter, profile.notes)
    assert profile.training_flops > 2 * profile.flops
    assert profile.memory_traffic_bytes > 0
    if spec.modality == "vision":
        assert profile.flops == pytest.approx(2e9 * spec.published["gmacs_224"], rel=0.02)
    if spec.is_moe:
        assert profile.params.active < profile.params.total

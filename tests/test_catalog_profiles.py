"""Every catalog entry profiles statically, weight-free, and its counters agree (acceptance of the engine core).

Text models run at 32 tokens to keep the suite quick (an image-and-text model's text too); audio models at the
clip length their inputs take; vision models at the image size of their published GMACs (``gmacs_<size>``: 224 px
for most, 256 for Swin V2 and MobileViT, 300 for EfficientNet-B3, 518 for DINOv2), where the count must match
the published GMACs x 2 within 2%.
"""

from __future__ import annotations

import pytest

from efficiency.counters.static import profile_static
from efficiency.models.catalog import list_models
from efficiency.specs import Workload

SPECS = list_models()


def published_gmacs(spec) -> tuple[int, float] | None:
    """(image size, GMACs) of a vision entry's published figure (``gmacs_224``, ``gmacs_518``, ...), else None."""
    for key, value in spec.published.items():
        if key.startswith("gmacs_") and key.removeprefix("gmacs_").isdigit():
            return int(key.removeprefix("gmacs_")), value
    return None


@pytest.mark.parametrize("spec", SPECS, ids=[s.id for s in SPECS])
def test_entry_profiles_without_error_and_counters_agree(spec):
    size, gmacs = published_gmacs(spec) or (224, None)
    profile = profile_static(spec, Workload(seq_len=32, image_size=size))
    assert profile.error is None
    assert profile.counter_errors == {}
    assert profile.uncounted_ops == []
    for counter, difference in profile.counter_differences.items():
        assert abs(difference) <= 0.02, (counter, profile.notes)
    assert profile.training_flops > 2 * profile.flops
    assert profile.memory_traffic_bytes > 0
    if spec.modality == "vision":
        assert profile.flops == pytest.approx(2e9 * gmacs, rel=0.02)
    if spec.is_moe:
        assert profile.params.active < profile.params.total


def test_vision_flops_are_checked_at_each_entrys_published_size():
    """The sizes the test above runs at: every vision entry has one published figure, most at 224 px."""
    sizes = {spec.id: published_gmacs(spec) for spec in SPECS if spec.modality == "vision"}
    assert None not in sizes.values()
    assert sizes["google/vit-base-patch16-224"] == (224, 17.56)
    assert sizes["facebook/dinov2-base"][0] == 518 and sizes["google/efficientnet-b3"][0] == 300

"""Vision inputs the generic rules cannot derive (patch layouts of VLM towers, image pairs, fixed or minimum image
sizes), built from transformers' own default configs as the coverage benchmark builds them, profile statically and
say which inputs they got; models that cannot run say why in one line."""

from __future__ import annotations

import pytest

from efficiency.models.depth import shallow_config
from efficiency.models.inputs import make_inputs, plan_inputs
from efficiency.specs import Workload
from tests.test_inputs import default_spec, profiles_as_described

WORKLOAD = Workload(seq_len=16, image_size=224)
# type -> a piece of the "Inputs: ..." note (all vision towers)
SAMPLE = {
    "siglip2_vision_model": "image 224x224 as 14x14 patches of 16 px",  # NaFlex patches, mask and grid
    "gemma4_vision": "image 192x192 as 12x12 patches of 16 px",  # cut to whole 3x3 pooling windows
    "minicpm_ocr_vision": "image 224x224 as 14x14 patches of 16 px",  # one packed strip of patches
    "kimi_k25_vision": "image 224x224 as 16x16 patches of 14 px",  # one (3, 14, 14) image per patch
    "mgp-str": "image 32x128",  # the one size it reads
    "rf_detr": "image 280x280",  # whole windows, enough positions for 300 queries
}


@pytest.mark.parametrize("model_type", sorted(SAMPLE))
def test_a_vision_tower_profiles_with_the_inputs_it_declares(tmp_path, model_type):
    profiles_as_described(default_spec(tmp_path, model_type), WORKLOAD, "vision", SAMPLE[model_type])


def test_a_changed_image_size_is_noted(tmp_path):
    gemma = plan_inputs(default_spec(tmp_path, "gemma4_vision"), WORKLOAD)
    assert gemma.notes == ("image rounded down to whole 3x3 pooling windows of 16 px patches (asked 224 px)",)
    depth = plan_inputs(default_spec(tmp_path, "depth_pro"), WORKLOAD)  # 384 px patches at a 0.25 scale
    assert depth.description == "image 1536x1536" and depth.shapes["pixel_values"][0] == (1, 3, 1536, 1536)
    assert "asked 224 px" in depth.notes[0]
    assert plan_inputs(default_spec(tmp_path, "mgp-str"), Workload(image_size=384)).description == "image 32x128"


def test_patch_layouts_follow_the_config(tmp_path):
    siglip2 = make_inputs(default_spec(tmp_path, "siglip2"), WORKLOAD, "cpu")  # the dual encoder: text and patches
    assert siglip2["pixel_values"].shape == (1, 196, 768) and siglip2["spatial_shapes"].tolist() == [[14, 14]]
    assert siglip2["input_ids"].shape == (1, 16)
    gemma = make_inputs(default_spec(tmp_path, "gemma4_vision"), WORKLOAD, "cpu")
    assert gemma["pixel_position_ids"][0, :13].tolist() == [[x, 0] for x in range(12)] + [[0, 1]]  # (x, y), by rows
    muse = plan_inputs(default_spec(tmp_path, "muse_glimmer_vision"), WORKLOAD).shapes  # 2 frames per patch
    assert muse["pixel_values"][0] == (256, 2 * 3 * 14 * 14) and muse["grid_thw"][1] == "grid:1,16,16"
    inkling = plan_inputs(default_spec(tmp_path, "inkling2_vision"), WORKLOAD).shapes  # 2x2 patches of 20 px a tile
    assert inkling["pixel_values"][0] == (25, 40, 40, 3) and inkling["image_grid_thw"][1] == "grid:1,5,5"


def test_keypoint_matchers_get_an_image_pair(tmp_path):
    plan = plan_inputs(default_spec(tmp_path, "efficientloftr"), WORKLOAD)
    assert plan.description == "image pair 2 x 224x224" and plan.shapes["pixel_values"][0] == (1, 2, 3, 224, 224)


@pytest.mark.parametrize(
    "model_type, reason",
    [
        ("lightglue", "keypoints its detector finds"),
        ("uvdoc", "its head takes 6 feature maps, its backbone outputs 1 (stage6)"),
        ("pp_ocrv6_small_det", "its neck takes 4 feature maps, its backbone outputs 1 (stage4)"),
        ("lw_detr", "no feature levels"),
    ],
)
def test_a_model_that_cannot_run_says_why_in_one_line(tmp_path, model_type, reason):
    with pytest.raises(ValueError, match="cannot be profiled") as failure:
        plan_inputs(default_spec(tmp_path, model_type), WORKLOAD)
    assert reason in str(failure.value) and "\n" not in str(failure.value)


def test_a_backbone_kept_whole_keeps_the_stages_it_outputs():
    from transformers import CONFIG_MAPPING

    config = CONFIG_MAPPING["mask2former"]().to_dict()
    backbone = shallow_config(config, 2)["backbone_config"]  # Swin's four stages: nothing to cut
    assert backbone["out_features"] == ["stage1", "stage2", "stage3", "stage4"]

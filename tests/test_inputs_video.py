"""Video layouts (and their kin from the same coverage list): clips of frames, padded frames, per-frame query
tokens, tracker sessions, prompt images on a fixed canvas, merged patch grids and a text tower with an inherited main
input profile statically from transformers' default configs, with the inputs they declare and transformers'
parameter count."""

from __future__ import annotations

import pytest

from efficiency.counters.static import profile_static
from efficiency.models.inputs import fit_workload, make_inputs, plan_inputs
from efficiency.specs import Workload
from tests.test_inputs import default_spec, profiles_as_described

# type -> (modality, a piece of the "Inputs: ..." note)
SAMPLE = {
    "videoprism_vision_model": ("vision", "video 16 frames of 224x224"),
    "tvp": ("multimodal", "text 16 tokens + video 48 frames of 224x224"),
    "instructblipvideo": ("multimodal", "video 4 frames of 224x224 (128 query tokens) + text 16 tokens"),
    "seggpt": ("vision", "image 448x448 + prompt image and mask 448x448"),
    "sam2_video": ("vision", "video frame 1024x1024 with 1 object prompted by 1 point"),
    "sam3_lite_text_text_model": ("text", "text 16 tokens"),
}
# Fields transformers' default config leaves unset although the model needs them (as the coverage benchmark fills)
COMPLETIONS = {"instructblipvideo": {"video_token_index": 50265}}
WORKLOAD = Workload(seq_len=16, image_size=224)


@pytest.mark.parametrize("model_type", sorted(SAMPLE))
def test_a_video_default_config_profiles_with_the_inputs_it_declares(tmp_path, model_type):
    modality, described = SAMPLE[model_type]
    spec = default_spec(tmp_path, model_type, **COMPLETIONS.get(model_type, {}))
    profiles_as_described(spec, WORKLOAD, modality, described)


def test_clips_take_the_frames_of_their_config(tmp_path):
    vjepa = plan_inputs(default_spec(tmp_path, "vjepa2"), WORKLOAD)  # frames_per_clip
    assert vjepa.shapes["pixel_values_videos"][0] == (1, 64, 3, 224, 224)
    prism = plan_inputs(default_spec(tmp_path, "videoprism"), WORKLOAD)  # num_frames; positions resized from 288
    assert prism.shapes["pixel_values_videos"][0] == (1, 16, 3, 224, 224) and prism.flags["interpolate_pos_encoding"]
    assert prism.description == "text 16 tokens + video 16 frames of 224x224"


def test_a_model_built_for_one_image_size_gets_it_and_says_so(tmp_path):
    fitted, notes = fit_workload(default_spec(tmp_path, "sam2"), WORKLOAD)
    assert fitted.image_size == 1024  # SAM 2's vision neck has fixed feature maps
    assert notes == ["Image 1024x1024, the size the model takes (asked 224)."]
    fitted, _ = fit_workload(default_spec(tmp_path, "seggpt"), WORKLOAD)
    assert fitted.image_size == 448  # half of SegGPT's (896, 448) canvas: the prompt above the input


def test_interleaved_images_get_a_mask_per_text_position(tmp_path):
    plan = plan_inputs(default_spec(tmp_path, "idefics"), WORKLOAD)
    assert plan.shapes["pixel_values"][0] == (1, 1, 3, 224, 224)
    flava = plan_inputs(default_spec(tmp_path, "flava"), WORKLOAD)  # an image_attention_mask of another kind
    assert flava.shapes["pixel_values"][0] == (1, 3, 224, 224) and "image_attention_mask" not in flava.shapes
    assert plan.shapes["image_attention_mask"][0] == (1, 16, 1) and plan.shapes["input_ids"][0] == (1, 16)
    assert plan.description == "text 16 tokens + 1 image 224x224"


def test_a_tracker_session_is_built_without_a_processor(tmp_path):
    inputs = make_inputs(default_spec(tmp_path, "sam2_video"), WORKLOAD, "meta")
    session = inputs["inference_session"]
    assert type(session).__name__ == "Sam2VideoInferenceSession" and inputs["frame_idx"] == 0
    assert session.num_frames == 1 and session.processed_frames[0].shape == (3, 1024, 1024)
    assert session.obj_with_new_inputs == [1]  # object 1, prompted by one point on the first frame
    assert session.point_inputs_per_obj[0][0]["point_coords"].shape == (1, 1, 1, 2)


def test_a_detect_and_track_video_model_says_in_one_line_why_it_is_not_profiled(tmp_path):
    with pytest.raises(ValueError, match="Sam3VideoModel is not profiled: it tracks as many objects") as caught:
        plan_inputs(default_spec(tmp_path, "sam3_video"), WORKLOAD)
    assert "\n" not in str(caught.value)


def test_a_merged_patch_tower_gets_a_merge_size_per_image(tmp_path):
    plan = plan_inputs(default_spec(tmp_path, "video_llama_3_vision"), WORKLOAD)
    assert plan.shapes["merge_sizes"] == ((1,), "ids")  # ones: the image processor's merge size for images
    assert plan.shapes["grid_thw"] == ((1, 3), "grid:1,14,14")
    assert plan.description == "image 224x224 as 14x14 patches of 16 px"


def test_a_type_fvcore_cannot_count_says_it_was_counted_by_torch_alone(tmp_path):
    profile = profile_static(default_spec(tmp_path, "unlimited_ocr"), WORKLOAD)  # a vmap torch.jit cannot trace
    assert "fvcore" in profile.counter_errors and "fvcore" not in profile.flops_by_counter
    alone = "No closed-form formula for unlimited_ocr; counted by torch alone (fvcore could not count it)."
    assert alone in profile.notes


def test_a_model_whose_trace_size_tensors_break_is_counted_by_fvcore_with_sizes_as_numbers(tmp_path):
    profile = profile_static(default_spec(tmp_path, "tvp"), WORKLOAD)  # its resize scale is computed from sizes
    assert profile.flops_by_counter["fvcore"] == profile.flops_by_counter["torch"] > 0
    assert "fvcore" not in profile.counter_errors

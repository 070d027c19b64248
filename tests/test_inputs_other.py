"""Family layouts of input_layouts_other: models whose inputs the generic rules cannot derive (a language adapter,
region features, image tokens in the prompt, an audio tower folded into an image, ...) profile statically from
transformers' default configs (depth cut to 2) with the inputs they declare, and a model with no forward to count
is refused in one line.
"""

from __future__ import annotations

import pytest

from efficiency.counters.static import profile_static
from efficiency.models.inputs import make_inputs
from efficiency.specs import Workload
from tests.test_inputs import default_spec, profiles_as_described

WORKLOAD = Workload(seq_len=16, image_size=224, audio_seconds=2.0)
# type -> (modality, the "Inputs: ..." note's text, fields the default config leaves unset that the model needs)
SAMPLE = {
    "xmod": ("text", "text 16 tokens + language en_XX", {}),
    "lxmert": ("text", "text 16 tokens + 36 image regions x 2048 features", {}),
    # BLIP-2's placeholder token for its query outputs (as the coverage benchmark fills it)
    "blip-2": ("multimodal", "image 224x224 (32 query tokens) + text 16 tokens", {"image_token_index": 50265}),
    "kosmos-2": ("multimodal", "image 224x224 (64 image positions) + text 16 tokens", {}),
    "clap": ("text", "text 16 tokens + audio 2.0 s as 200 frames x 64 mel bins", {}),
    "muse_glimmer_assistant": ("text", "context 16 tokens x 5 target layers + draft block 16 tokens", {}),
}


@pytest.mark.parametrize("model_type", sorted(SAMPLE))
def test_a_family_layout_profiles_with_the_inputs_it_describes(tmp_path, model_type):
    modality, described, completion = SAMPLE[model_type]
    spec = default_spec(tmp_path, model_type, **completion)
    profiles_as_described(spec, WORKLOAD, modality, described, exact=True)


def test_image_tokens_sit_where_the_processor_puts_them(tmp_path):
    inputs = make_inputs(default_spec(tmp_path, "blip-2", image_token_index=50265), WORKLOAD, "meta")
    assert inputs["input_ids"].shape == (1, 32 + 16) and inputs["pixel_values"].shape == (1, 3, 224, 224)
    kosmos = make_inputs(default_spec(tmp_path, "kosmos-2"), WORKLOAD, "cpu")
    mask = kosmos["image_embeds_position_mask"]
    assert mask.shape == (1, 64 + 16) and int(mask.sum()) == 64 and bool(mask[0, :64].all())


def test_a_clap_clip_longer_than_its_window_is_cut_to_it_and_says_so(tmp_path):
    from efficiency.models.inputs import plan_inputs

    plan = plan_inputs(default_spec(tmp_path, "clap"), Workload(seq_len=16, audio_seconds=30.0))
    assert plan.shapes["input_features"][0] == (1, 1, 1024, 64)  # 256 x (256 // 64) frames at most
    assert any("the longest its audio tower takes (asked 30 s)" in note for note in plan.notes)


@pytest.mark.parametrize(
    ("model_type", "reason"),
    [("bark", "BarkModel has no forward pass of its own to count, only generate()")],
)
def test_a_model_without_a_forward_is_refused_in_one_line(tmp_path, model_type, reason):
    with pytest.raises(ValueError, match=reason) as caught:
        profile_static(default_spec(tmp_path, model_type), WORKLOAD, forward_only=True)
    assert "\n" not in str(caught.value)


# Experts blocks outside the stacked-and-routed pattern: Llama 4 (every expert on score-weighted copies of every
# token) and JetMoE (experts split by the router's token counts); tiny widths, the default configs' depth cut.
TINY_EXPERTS = {
    "llama4_text": {
        "hidden_size": 64,
        "intermediate_size": 96,
        "intermediate_size_mlp": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "vocab_size": 500,
        "num_experts_per_tok": 1,
    },
    "jetmoe": {
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_key_value_heads": 2,
        "kv_channels": 16,
        "vocab_size": 500,
        "num_experts_per_tok": 2,
    },
}


@pytest.mark.parametrize(("model_type", "routers"), [("llama4_text", 1), ("jetmoe", 2)])
def test_experts_count_per_token_top_k_whatever_the_number_of_experts(tmp_path, model_type, routers):
    """Four experts cost what two do but for the routers (hidden -> experts per token, ``routers`` a layer: JetMoE
    routes its attention too): each token runs its top-k experts, whatever their number."""
    flops, layers = [], 0
    for experts in (4, 2):
        (tmp_path / str(experts)).mkdir()
        spec = default_spec(tmp_path / str(experts), model_type, **TINY_EXPERTS[model_type], num_local_experts=experts)
        flops.append(profile_static(spec, WORKLOAD, forward_only=True).flops)
        layers = spec.config["num_hidden_layers"]
    assert flops[0] - flops[1] == layers * routers * 2 * WORKLOAD.seq_len * 64 * (4 - 2)

"""The offline model catalog: its entries resolve, carry their sources, and build to the published size.

Every model is built on the ``meta`` device (no weights allocated), so even the 530 B entry takes a
fraction of a second. Parameter counts must match the model card / paper figure within 1%, or within
the rounding of that figure where it is only published to whole millions (``params_precision``).
An entry's modality and task are the ones transformers' own classes declare for its architecture.
"""

from __future__ import annotations

import json
from functools import cache

import pytest

from efficiency.models import catalog
from efficiency.models.catalog import CATALOG_DIR
from efficiency.models.loading import VISION_MODEL_TYPES, build_model
from efficiency.models.modality import infer_modality, supported_task
from efficiency.specs import FAMILIES, MODALITIES

REQUIRED = [
    # text encoders
    "bert-base-uncased",
    "bert-base",
    "bert-large-uncased",
    "bert-large",
    "distilbert-base-uncased",
    "distilbert",
    "roberta-base",
    "albert-base-v2",
    "albert-large-v2",
    "albert-xlarge-v2",
    "albert-xxlarge-v2",
    "electra-small-discriminator",
    "electra-small",
    "mobilebert-uncased",
    "mobilebert",
    "microsoft/deberta-v3-base",
    "deberta-v3-base",
    # decoders
    "gpt2",
    "gpt2-medium",
    "gpt2-large",
    "gpt2-xl",
    "openai-community/gpt2",
    "facebook/opt-125m",
    "opt-125m",
    "EleutherAI/pythia-160m",
    "pythia-160m",
    "Qwen/Qwen2.5-0.5B",
    "qwen2.5-0.5b",
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    "tinyllama",
    "microsoft/phi-2",
    "phi-2",
    "meta-llama/Llama-2-7b-hf",
    "llama-2-7b",
    "mistralai/Mistral-7B-v0.1",
    "mistral-7b",
    "meta-llama/Llama-3.2-1B",
    "llama-3.2-1b",
    "Qwen/Qwen2.5-1.5B",
    "qwen2.5-1.5b",
    "microsoft/Phi-3-mini-4k-instruct",
    "phi-3-mini",
    "google/gemma-2-2b",
    "gemma-2-2b",
    "mistralai/Mistral-7B-v0.3",
    "mistral-7b-v0.3",
    "HuggingFaceTB/SmolLM2-360M",
    "smollm2-360m",
    # encoder-decoders and MoE
    "t5-small",
    "t5-base",
    "t5-large",
    "google-t5/t5-base",
    "facebook/bart-base",
    "bart-base",
    "google/switch-base-8",
    "google/switch-base-16",
    "google/switch-base-32",
    "switch-base-8",
    "mistralai/Mixtral-8x7B-v0.1",
    "mixtral-8x7b",
    # vision
    "google/vit-base-patch16-224",
    "vit-b16",
    "vit-b32",
    "google/vit-large-patch16-224",
    "vit-l16",
    "facebook/deit-tiny-patch16-224",
    "deit-tiny",
    "microsoft/swin-tiny-patch4-window7-224",
    "swin-t",
    "facebook/convnext-tiny-224",
    "convnext-t",
    "microsoft/resnet-18",
    "resnet-18",
    "microsoft/resnet-50",
    "resnet-50",
    "google/efficientnet-b0",
    "efficientnet-b0",
    "google/mobilenet_v2_1.0_224",
    "mobilenet-v2",
    "facebook/dinov2-small",
    "dinov2-small",
    "facebook/dinov2-base",
    "dinov2-base",
    "facebook/convnextv2-tiny-1k-224",
    "convnextv2-t",
    "microsoft/swinv2-tiny-patch4-window8-256",
    "swinv2-t",
    "apple/mobilevit-small",
    "mobilevit-s",
    "google/efficientnet-b3",
    "efficientnet-b3",
    # audio
    "openai/whisper-tiny",
    "whisper-tiny",
    "openai/whisper-base",
    "whisper-base",
    # image and text
    "openai/clip-vit-base-patch32",
    "clip-vit-b32",
    "google/siglip-base-patch16-224",
    "siglip-base",
    # giants
    "gpt3-175b",
    "mt-nlg-530b",
    "meta-llama/Llama-2-70b-hf",
    "llama-2-70b",
]
MOE_IDS = {
    "google/switch-base-8",
    "google/switch-base-16",
    "google/switch-base-32",
    "mistralai/Mixtral-8x7B-v0.1",
}
SPECS = catalog.list_models()


@cache
def built(model_id: str):
    """Each model is built once per session, as the engine builds it (default attention)."""
    return build_model(catalog.find(model_id), device="meta")


def param_tolerance(published: dict) -> float:
    """1% of the published figure, widened to its rounding unit or a documented discrepancy."""
    params = published["params"]
    return max(
        0.01 * params,
        published.get("params_precision", 0),
        published.get("params_tolerance", 0) * params,
    )


def test_catalog_has_at_least_60_entries_across_every_modality():
    assert len(SPECS) >= 60
    assert {s.modality for s in SPECS} == set(MODALITIES)


def published_gmacs(spec) -> tuple[int, float]:
    """(image size, GMACs) of a vision entry's published figure, from its ``gmacs_<size>`` key."""
    sizes = [
        (int(key.removeprefix("gmacs_")), value)
        for key, value in spec.published.items()
        if key.startswith("gmacs_") and key[6:].isdigit()
    ]
    assert len(sizes) == 1, f"{spec.id}: exactly one published gmacs_<image size>, got {sizes}"
    return sizes[0]


@pytest.mark.parametrize("name", REQUIRED)
def test_required_models_resolve(name):
    assert catalog.find(name) is not None, f"{name} is not in the catalog"


def test_names_resolve_case_insensitively():
    assert catalog.find("ViT-B16") is catalog.find("google/vit-base-patch16-224")


def test_ids_aliases_and_hub_ids_are_unique_across_entries():
    owner: dict[str, str] = {}
    for path in sorted(CATALOG_DIR.glob("*.json")):
        for entry in json.loads(path.read_text(encoding="utf-8")):
            names = {entry["id"], *entry["aliases"], *([entry["hf_id"]] if entry["hf_id"] else [])}
            for name in names:
                key = name.lower()
                assert key not in owner, f"{name!r} names both {owner[key]!r} and {entry['id']!r}"
                owner[key] = entry["id"]


def test_every_entry_has_a_short_name():
    """An org-prefixed Hub id also resolves by a short alias (vit-b16, llama-2-7b, ...)."""
    assert [s.id for s in SPECS if all("/" in name for name in (s.id, *s.aliases))] == []


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_entry_is_documented(spec):
    assert spec.source.startswith("https://"), "source must be a URL (config.json on the Hub, or the paper)"
    assert spec.note and spec.name
    assert spec.families and set(spec.families) <= set(FAMILIES)
    published = spec.published
    assert isinstance(published.get("params"), int) and published["params"] > 0
    assert published.get("params_source") and published.get("params_what")
    if "params_tolerance" in published:
        assert published.get("params_discrepancy"), "a widened tolerance must say why"
    assert spec.config, "the published configuration values are required"


@pytest.mark.parametrize("spec", [s for s in SPECS if s.modality == "vision"], ids=lambda s: s.id)
def test_vision_entries_have_1000_classes_and_published_macs_at_their_size(spec):
    assert spec.task in {"image-classification", "base"}  # base: a backbone without a head (DINOv2)
    if spec.task == "image-classification":
        assert spec.config["num_labels"] == 1000
    size, gmacs = published_gmacs(spec)
    assert gmacs > 0 and spec.published["gmacs_source"]
    assert f"{size}x{size}" in spec.published["gmacs_what"]
    native = spec.config.get("image_size", 224)
    assert size == native, f"{spec.id}: published at {size} px, configured for {native} px"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_modality_and_task_are_what_transformers_declares(spec):
    """The modality the engine infers for a config from outside the catalog is the one the catalog states."""
    assert infer_modality(spec.model_type, spec.config, VISION_MODEL_TYPES) == spec.modality
    assert supported_task(spec.model_type, spec.task) == spec.task


def test_family_tags_match_the_architecture():
    assert {s.id for s in SPECS if s.is_moe} == MOE_IDS
    for spec in SPECS:
        structure = {"encoder", "decoder", "encoder-decoder", "cnn", "vision-transformer"} & set(spec.families)
        assert len(structure) == 1, f"{spec.id}: exactly one structural family, got {structure}"
        if spec.task == "seq2seq-lm":
            assert "encoder-decoder" in spec.families
        if spec.task == "causal-lm":
            assert "decoder" in spec.families
        if spec.config.get("is_encoder_decoder"):  # Whisper: an encoder-decoder whose task is "base"
            assert "encoder-decoder" in spec.families
    assert all("parameter-shared" in catalog.find(f"albert-{s}-v2").families for s in ("base", "large", "xlarge"))


def test_configs_are_the_published_models_not_class_defaults():
    b0 = catalog.find("efficientnet-b0").config
    assert (b0["width_coefficient"], b0["depth_coefficient"], b0["image_size"], b0["hidden_dim"]) == (
        1.0,
        1.0,
        224,
        1280,
    )
    switch = catalog.find("switch-base-8").config
    assert (switch["d_ff"], switch["num_sparse_encoder_layers"], switch["expert_capacity"]) == (3072, 6, 64)
    mixtral = catalog.find("mixtral-8x7b").config
    assert (mixtral["num_local_experts"], mixtral["num_experts_per_tok"], mixtral["rope_theta"]) == (8, 2, 1e6)
    assert catalog.find("llama-2-70b").config["num_key_value_heads"] == 8
    assert catalog.find("t5-base").config["tie_word_embeddings"] is True
    b3 = catalog.find("efficientnet-b3").config  # the class default is B7
    assert (b3["width_coefficient"], b3["depth_coefficient"], b3["image_size"], b3["hidden_dim"]) == (
        1.2,
        1.4,
        300,
        1536,
    )
    assert b3["depthwise_padding"] == [5, 18]
    llama = catalog.find("llama-3.2-1b").config
    assert llama["rope_scaling"]["rope_type"] == "llama3" and llama["tie_word_embeddings"] is True
    gemma = catalog.find("gemma-2-2b").config
    assert (gemma["head_dim"], gemma["sliding_window"], gemma["final_logit_softcapping"]) == (256, 4096, 30.0)
    phi3 = catalog.find("phi-3-mini").config
    assert (phi3["num_key_value_heads"], phi3["vocab_size"], phi3["max_position_embeddings"]) == (32, 32064, 4096)
    assert catalog.find("mistral-7b-v0.3").config["vocab_size"] == 32768  # v0.1: 32000
    siglip = catalog.find("siglip-base").config  # the released config leaves both towers at class defaults
    assert (siglip["text_config"]["vocab_size"], siglip["text_config"]["max_position_embeddings"]) == (32000, 64)
    assert siglip["vision_config"]["patch_size"] == 16
    for size in ("small", "base"):
        dinov2 = catalog.find(f"dinov2-{size}").config
        assert (dinov2["image_size"], dinov2["patch_size"]) == (518, 14)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_parameter_count_matches_published(spec):
    model = built(spec.id)
    counted = sum(p.numel() for p in model.parameters())  # tied weights are one Parameter: counted once
    assert counted == model.num_parameters(), "our count must equal transformers' own"
    published = spec.published["params"]
    assert abs(counted - published) <= param_tolerance(spec.published), (
        f"{spec.id}: built {counted:,} parameters, published {published:,} ({counted / published:.4f}x)"
    )


@pytest.mark.parametrize("spec", [s for s in SPECS if "params_non_embedding" in s.published], ids=lambda s: s.id)
def test_non_embedding_parameters_match_published(spec):
    """Total minus the token embedding and (when untied) the LM head: tying and vocabulary size both show."""
    model = built(spec.id)
    tables = {id(m.weight): m.weight.numel() for m in (model.get_input_embeddings(), model.get_output_embeddings())}
    non_embedding = sum(p.numel() for p in model.parameters()) - sum(tables.values())
    published = spec.published["params_non_embedding"]
    tolerance = max(0.01 * published, spec.published.get("params_precision", 0))
    assert abs(non_embedding - published) <= tolerance, f"{spec.id}: {non_embedding:,} vs {published:,}"


def test_mixtral_active_parameters_match_the_model_card():
    spec = catalog.find("mixtral-8x7b")
    model = built(spec.id)
    total = sum(p.numel() for p in model.parameters())
    experts = sum(p.numel() for name, p in model.named_parameters() if ".experts." in name)
    assert experts > 0.9 * total
    share = spec.config["num_experts_per_tok"] / spec.config["num_local_experts"]
    active = total - experts + experts * share
    assert active == pytest.approx(spec.published["params_active"], rel=0.01)


def test_switch_experts_grow_parameters_but_not_the_dense_part():
    """Switch-Base-8/16/32 share everything but the number of experts: the difference is whole experts."""
    totals = {e: sum(p.numel() for p in built(f"google/switch-base-{e}").parameters()) for e in (8, 16, 32)}
    per_extra_expert = (totals[16] - totals[8]) / 8
    assert totals[32] - totals[16] == pytest.approx(16 * per_extra_expert)
    cfg = catalog.find("switch-base-8").config
    expert_ffn = 2 * cfg["d_model"] * cfg["d_ff"]
    router = cfg["d_model"]
    sparse_layers = cfg["num_sparse_encoder_layers"] + cfg["num_sparse_decoder_layers"]
    assert per_extra_expert == sparse_layers * (expert_ffn + router)

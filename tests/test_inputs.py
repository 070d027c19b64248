"""Inputs come from the model, not its family: architectures outside the catalog, built from transformers' own
default configs (depth cut to 2 layers, per-layer lists with it), profile statically, and say which inputs they got.
"""

from __future__ import annotations

import json

import pytest
import torch

from efficiency.counters.static import profile_static
from efficiency.models.depth import shallow_config
from efficiency.models.inputs import fit_workload, make_inputs, plan_inputs
from efficiency.models.loading import build_model, resolve, spec_from_config_dict
from efficiency.specs import Workload

# type -> (modality, a piece of the "Inputs: ..." note)
SAMPLE = {
    "bert": ("text", "text 16 tokens"),
    "gpt2": ("text", "text 16 tokens"),
    "t5": ("text", "16 decoder tokens"),
    "bart": ("text", "16 decoder tokens"),
    "layoutlm": ("text", "text 16 tokens"),
    "vit": ("vision", "image 224x224"),
    "swin": ("vision", "image 224x224"),
    "convnext": ("vision", "image 224x224"),
    "dinov2": ("vision", "image 224x224"),
    "wav2vec2": ("audio", "audio 10.0 s at 16 kHz"),
    "whisper": ("audio", "80 mel bins x 3000 frames"),
    "clip": ("multimodal", "image 224x224"),
    # beyond the first twelve: decoders of today, sparse experts (shared and fused), per-layer attention kinds,
    # forecasting and trajectory models, CNNs and hybrids, speech encoders, dual encoders
    "llama": ("text", "text 16 tokens"),
    "mistral": ("text", "text 16 tokens"),
    "qwen2": ("text", "text 16 tokens"),
    "phi3": ("text", "text 16 tokens"),
    "mixtral": ("text", "text 16 tokens"),
    "deepseek_v3": ("text", "text 16 tokens"),
    "gpt_oss": ("text", "text 16 tokens"),
    "gemma2": ("text", "text 16 tokens"),
    "opt": ("text", "text 16 tokens"),
    "electra": ("text", "text 16 tokens"),
    "time_series_transformer": ("text", "series 31 past steps + 24 future steps x 1 variate"),
    "patchtst": ("text", "series 32 steps x 1 channel"),
    "decision_transformer": ("text", "trajectory 16 steps (3 tokens each)"),
    "resnet": ("vision", "image 224x224"),
    "mobilevit": ("vision", "image 224x224"),
    "segformer": ("vision", "image 224x224"),
    "beit": ("vision", "image 224x224"),
    "hubert": ("audio", "audio 10.0 s at 16 kHz"),
    "speech_to_text": ("audio", "audio 10.0 s as 1000 frames x 80 features + 16 decoder tokens"),
    "audio-spectrogram-transformer": ("audio", "audio 10.2 s as 1024 frames x 128 mel bins"),
    "siglip": ("multimodal", "text 16 tokens + image 224x224"),
    "owlvit": ("multimodal", "text 16 tokens + image 224x224"),
}
# Fields transformers' default config leaves unset although the model needs them (as the coverage benchmark fills)
COMPLETIONS = {"time_series_transformer": {"prediction_length": 24}}
WORKLOAD = Workload(seq_len=16, image_size=224)


def default_spec(tmp_path, model_type: str, **changes):
    from transformers import CONFIG_MAPPING

    config = {k: v for k, v in CONFIG_MAPPING[model_type]().to_dict().items() if k != "transformers_version"}
    folder = tmp_path / model_type
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({**shallow_config(config, 2), **changes, "model_type": model_type}))
    return resolve(str(folder))


def profiles_as_described(spec, workload: Workload, modality: str, described: str, exact: bool = False):
    """Profile ``spec`` statically and check what every family's test checks: its modality, FLOPs and traffic above
    zero, the "Inputs: ..." note (containing ``described``, or equal to it with ``exact``) and parameters equal to
    transformers' own count. Returns the profile for checks of its own."""
    assert spec.modality == modality
    profile = profile_static(spec, workload, forward_only=True)
    assert profile.flops > 0 and profile.memory_traffic_bytes > 0
    inputs = next((note for note in profile.notes if note.startswith("Inputs: ")), "")
    said = inputs.removeprefix("Inputs: ").split(";")[0].rstrip(".")
    assert (said == described) if exact else (described in inputs), profile.notes
    built = build_model(spec, device="meta")
    assert profile.params.total == sum(p.numel() for p in built.parameters())  # transformers' own count
    return profile


@pytest.mark.parametrize("model_type", sorted(SAMPLE))
def test_a_default_config_profiles_with_inputs_it_declares(tmp_path, model_type):
    modality, described = SAMPLE[model_type]
    spec = default_spec(tmp_path, model_type, **COMPLETIONS.get(model_type, {}))
    profiles_as_described(spec, WORKLOAD, modality, described)


def test_speech_inputs_follow_the_config(tmp_path):
    whisper = make_inputs(default_spec(tmp_path, "whisper"), WORKLOAD, "meta")
    assert whisper["input_features"].shape == (1, 80, 3000)  # Whisper's encoder takes exactly 30 s
    assert whisper["decoder_input_ids"].shape == (1, 16) and whisper["use_cache"] is False
    wave = make_inputs(default_spec(tmp_path, "wav2vec2"), WORKLOAD, "meta")
    assert wave["input_values"].shape == (1, 160_000) and wave["input_values"].dtype == torch.float32


def test_image_text_models_get_both_inputs_and_the_text_tower_its_own_length(tmp_path):
    plan = plan_inputs(default_spec(tmp_path, "clip"), Workload(seq_len=128, image_size=224))
    assert plan.shapes["input_ids"][0] == (1, 77) and plan.shapes["pixel_values"][0] == (1, 3, 224, 224)
    assert any("capped at the model's maximum of 77 positions" in note for note in plan.notes)


def test_layout_models_get_a_box_per_token(tmp_path):
    inputs = make_inputs(default_spec(tmp_path, "layoutlm"), WORKLOAD, "meta")
    assert inputs["bbox"].shape == (1, 16, 4)


def test_modality_and_task_come_from_transformers_own_classes():
    def spec(config):
        return spec_from_config_dict(config, "x", "local", "x")

    assert spec({"model_type": "dinov2"}).modality == "vision"
    assert spec({"model_type": "hubert"}).modality == "audio"
    assert spec({"model_type": "siglip"}).modality == "multimodal"
    assert spec({"model_type": "bert"}).modality == "text"
    speech = spec({"model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"]})
    assert speech.task == "base"  # a speech head, not a text seq2seq one: AutoModel builds it
    assert spec({"model_type": "bart", "architectures": ["BartForConditionalGeneration"]}).task == "seq2seq-lm"


@pytest.mark.parametrize("modality", ["audio", "multimodal"])
def test_the_workload_of_new_modalities_round_trips(modality):
    shown = Workload(seq_len=64, image_size=160).for_modality(modality)
    assert Workload(**shown).for_modality(modality) == shown


def test_the_clip_length_is_part_of_the_workload_and_the_result_says_it(tmp_path):
    spec = default_spec(tmp_path, "wav2vec2")
    short = profile_static(spec, Workload(audio_seconds=2.5), forward_only=True).to_result()
    assert short.inputs == "audio 2.5 s at 16 kHz" and short.workload["audio_seconds"] == 2.5
    assert make_inputs(spec, Workload(audio_seconds=2.5), "meta")["input_values"].shape == (1, 40_000)
    long = profile_static(spec, Workload(audio_seconds=10.0), forward_only=True).to_result()
    assert long.flops > 3 * short.flops  # four times the samples: a bit under four times the work


def test_a_fixed_window_encoder_gets_its_window_and_says_so(tmp_path):
    spec = default_spec(tmp_path, "whisper")
    fitted, notes = fit_workload(spec, Workload(audio_seconds=10.0))
    assert fitted.audio_seconds == 30.0
    assert notes == ["Audio 30.0 s, the window the model's encoder takes (asked 10 s)."]
    result = profile_static(spec, Workload(seq_len=16), forward_only=True).to_result()
    assert result.workload["audio_seconds"] == 30.0 and notes[0] in result.notes
    assert result.inputs == "audio 30.0 s as 80 mel bins x 3000 frames + 16 decoder tokens"


def test_the_clip_length_keys_stored_results():
    from efficiency.results import Result
    from efficiency.store.lookup import Wanted, matches

    stored = Result(model="m", workload=Workload(audio_seconds=5.0).for_modality("audio"), params=1)
    for seconds, expected in ((5.0, True), (10.0, False)):
        wanted = Wanted(model="m", workload={**Workload(audio_seconds=seconds).to_dict()}, measured=False)
        assert matches(stored, wanted) is expected
    assert "audio_seconds" not in Workload().for_modality("text")


@pytest.mark.parametrize("seconds", [0, -1.0, float("nan"), 10_000.0, "10"])
def test_a_clip_length_outside_the_range_is_refused_in_one_line(seconds):
    with pytest.raises(ValueError, match=r"^audio_seconds: ") as caught:
        Workload(audio_seconds=seconds)
    assert "\n" not in str(caught.value)


def test_the_cli_takes_the_clip_length(tmp_path, capsys):
    from efficiency.cli.main import main

    default_spec(tmp_path, "wav2vec2")
    assert main(["profile", str(tmp_path / "wav2vec2"), "--audio-seconds", "2", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["inputs"] == "audio 2.0 s at 16 kHz" and row["workload"]["audio_seconds"] == 2.0


def test_per_layer_mappings_are_cut_with_the_depth_and_mean_layers_differ():
    from efficiency.models.depth import reduced_depth, varying_lists

    config = {
        "num_hidden_layers": 6,
        "per_layer_config": {"1": {"sliding_window": 64}, "5": {"sliding_window": 64}},
        "id2label": {"0": "NEGATIVE", "1": "POSITIVE"},  # class indices, not layers
    }
    assert reduced_depth(config, ("num_hidden_layers",), 6, 2) == {
        "num_hidden_layers": 2,
        "per_layer_config": {"1": {"sliding_window": 64}},
    }
    assert varying_lists(config, 6) == ["per_layer_config"]  # some layers set apart: counted at full depth

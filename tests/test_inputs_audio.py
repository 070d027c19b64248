"""Speech and audio layouts of input_layouts_audio: codecs fed waveforms or latents, stacked filter-bank frames,
Whisper-descended encoders taking mel bins as channels, mel counts implied by the model, and SpeechT5's bare
encoder-decoder profile statically from transformers' default configs (depth cut to 2), sized by the config and the
clip length, and say what they were given.
"""

from __future__ import annotations

import pytest

from efficiency.models.inputs import plan_inputs
from efficiency.specs import Workload
from tests.test_inputs import default_spec, profiles_as_described

WORKLOAD = Workload(seq_len=16, image_size=224, audio_seconds=2.0)
# type -> (modality, the "Inputs: ..." note's text, the main input's shape)
SAMPLE = {
    # DAC: one channel (its first Conv1d), 32000 samples padded to whole 512-sample hops
    "dac": ("audio", "audio 2.0 s at 16 kHz", ("input_values", (1, 1, 32_256))),
    # VibeVoice's decoder: 24 kHz (its feature extractor) over 3200-sample hops = 7.5 latent frames per second
    "vibevoice_acoustic_tokenizer_decoder": (
        "audio",
        "latents 15 frames x 64 (2.0 s at 7.5 Hz, 24 kHz audio)",
        ("hidden_states", (1, 64, 15)),
    ),
    "wav2vec2-bert": (
        "audio",
        "audio 2.0 s as 100 frames x 160 features (2 stacked frames)",
        ("input_features", (1, 100, 160)),
    ),
    "glmasr_encoder": ("audio", "audio 2.0 s as 128 mel bins x 200 frames", ("input_features", (1, 128, 200))),
    "gemma4_audio": ("audio", "audio 2.0 s as 200 frames x 128 mel bins", ("input_features", (1, 200, 128))),
    "speecht5": (
        "audio",
        "encoder states 100 x 768 (2.0 s of 16 kHz audio at the speech pre-net's stride) + decoder states 16 x 768",
        ("input_values", (1, 100, 768)),
    ),
}


@pytest.mark.parametrize("model_type", sorted(SAMPLE))
def test_an_audio_layout_profiles_with_the_inputs_it_describes(tmp_path, model_type):
    modality, described, (name, shape) = SAMPLE[model_type]
    spec = default_spec(tmp_path, model_type)
    assert plan_inputs(spec, WORKLOAD).shapes[name][0] == shape
    profiles_as_described(spec, WORKLOAD, modality, described, exact=True)


# Planned only (no profile): the shapes each layout derives from the config and the clip
PLANS = {
    # Muse Spark's patcher takes (batch, samples) in whole samples_per_token (1920): 40000 -> 40320
    ("muse_spark_audio", 2.5): {"input_values": (1, 40_320)},
    # Qwen3-ASR attends in windows of n_window * 2 = 100 frames: 250 -> 300, one mask value per frame
    ("qwen3_asr_encoder", 2.5): {"input_features": (1, 128, 300), "input_features_mask": (1, 300)},
    # Nemotron 3.5 Transcribe: 128 mel bins from its asr_config, frames in whole subsampling_factor (8) steps
    ("nemotron3_5_transcribe_audio", 2.5): {"input_features": (1, 256, 128)},
    # Fun-ASR-Nano: 7 stacked frames of 80 mel bins every 6th frame
    ("fun_asr_nano_encoder", 2.0): {"input_features": (1, 34, 560)},
    ("granite_speech5_ctc", 2.0): {"input_features": (1, 100, 320)},
    # X-Codec2: the waveform and its semantic encoder's (Wav2Vec2-BERT) features, frame for frame
    ("xcodec2", 2.0): {"input_values": (1, 1, 32_000), "input_features": (1, 100, 160)},
    # Voxtral Realtime: a text token per 8 mel frames, whatever the asked length
    ("voxtral_realtime", 2.0): {"input_ids": (1, 25), "input_features": (1, 128, 200)},
    # Kyutai Speech-to-Text: a text token and 32 codes per step
    ("kyutai_speech_to_text", 2.0): {"input_ids": (1, 16, 33)},
    ("mimi_decoder", 2.0): {"latents": (1, 512, 25)},
}


@pytest.mark.parametrize(("model_type", "seconds"), sorted(PLANS))
def test_audio_inputs_follow_the_config_and_the_clip(tmp_path, model_type, seconds):
    plan = plan_inputs(default_spec(tmp_path, model_type), Workload(seq_len=16, audio_seconds=seconds))
    assert {name: plan.shapes[name][0] for name in PLANS[model_type, seconds]} == PLANS[model_type, seconds]
    padded = model_type in {"muse_spark_audio", "qwen3_asr_encoder", "nemotron3_5_transcribe_audio"}
    assert any("padded to" in note for note in plan.notes) is padded

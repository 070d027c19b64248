"""Speech and audio layouts the generic rules cannot derive (stacked frames, codec latents, ...).

Each layout takes an ``InputContext`` and returns a one-line description of what it planned, or None when the model
is not one of its own (see ``efficiency.models.inputs.special_layouts``).

Sizes come from the config (sampling rate, hop or down-sampling ratios, mel bins, stacked frames, hidden size) and
the workload's clip length; a constant that lives in the modeling code or the model's own feature extractor is
named where it is used.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from efficiency.models.input_base import (
    DEFAULT_SAMPLING_RATE,
    FEATURE_FRAMES_PER_SECOND,
    InputContext,
    Layout,
    find_field,
)

CODEC_TOWERS = ("dac_config", "acoustic_model_config", "audio_config", "codec_config", "encoder_config")
RATE_KEYS = ("sampling_rate", "sample_rate", "input_sampling_rate")


def _extractor_default(model_type: str, name: str) -> Any:
    """A default of the model's own feature extractor (``sampling_rate`` of VibeVoice's, 24 kHz), for a size its
    config does not carry; None when transformers maps no extractor to the type."""
    from transformers.models.auto.feature_extraction_auto import (
        FEATURE_EXTRACTOR_MAPPING_NAMES,
        feature_extractor_class_from_name,
    )

    parent = model_type.removesuffix("_encoder").removesuffix("_decoder")  # a tower's type: its model's extractor
    name_of_class = FEATURE_EXTRACTOR_MAPPING_NAMES.get(model_type) or FEATURE_EXTRACTOR_MAPPING_NAMES.get(parent)
    extractor = feature_extractor_class_from_name(name_of_class) if name_of_class else None
    if extractor is None:
        return None
    parameter = inspect.signature(extractor.__init__).parameters.get(name)
    return None if parameter is None or parameter.default is parameter.empty else parameter.default


def _rate(config: Any) -> int:
    rate = _codec_find(config, RATE_KEYS)
    if rate is None:
        rate = _extractor_default(getattr(config, "model_type", ""), "sampling_rate")
    return int(rate or DEFAULT_SAMPLING_RATE)


def _khz(rate: int) -> str:
    return f"{rate / 1000:g} kHz"


def _codec_find(config: Any, keys: tuple[str, ...]) -> Any:
    """``find_field`` over the config, its codec towers and theirs (PE-Audio: ``audio_config.dac_config``)."""
    found = find_field(config, keys, CODEC_TOWERS)
    for tower in CODEC_TOWERS:
        sub = getattr(config, tower, None)
        if found is None and sub is not None:
            found = find_field(sub, keys, CODEC_TOWERS)
    return found


def _ratios_product(config: Any, key: str) -> int | None:
    ratios = _codec_find(config, (key,))
    return math.prod(int(r) for r in ratios) if isinstance(ratios, (list, tuple)) and ratios else None


def _mel_frames(seconds: float) -> int:
    return max(1, round(seconds * FEATURE_FRAMES_PER_SECOND))


def _whole_hops(ctx: InputContext, samples: int, hop: int, rate: int) -> int:
    """``samples`` rounded up to whole hops of the encoder (as its feature extractor pads), with a note if changed."""
    padded = math.ceil(samples / hop) * hop
    if padded != samples:
        ctx.notes.append(
            f"audio padded to {padded} samples ({padded / rate:.2f} s), whole {hop}-sample hops of the encoder"
        )
    return padded


def codec_waveform(ctx: InputContext) -> str | None:
    """Neural codecs and their encoders fed the raw waveform through a strided convolution stack (DAC, X-Codec,
    X-Codec2, NeuCodec, PE-Audio's DAC front end, VibeVoice's acoustic tokenizer, Muse Spark's patcher): the clip at
    the codec's sampling rate, padded to whole hops (the product of its down-sampling ratios), shaped
    ``(batch, channels, samples)``; Muse Spark takes ``(batch, samples)``. X-Codec2 and NeuCodec also take their
    semantic encoder's (Wav2Vec2-BERT) stacked filter-bank features."""
    config = ctx.config
    needed = "input_values" in ctx.required or ctx.main == "input_values" and "input_values" in ctx.params
    waveform = "input_values" if needed else None  # optional audio (VibeVoice's LLM) keeps its text-only pass
    ratios = _ratios_product(config, "downsampling_ratios")
    per_token = find_field(config, ("samples_per_token",))  # Muse Spark: the product of its patch sizes
    encoder_alone = ctx.required == {"hidden_states"} and find_field(config, ("upsampling_ratios",)) is None
    if waveform is None and encoder_alone and ratios and find_field(config, ("channels",)):
        waveform = "hidden_states"  # VibeVoice's encoder alone: its hidden states are the waveform
    if waveform is None or not (ratios or per_token):
        return None
    hop = int(per_token or ratios)
    rate = _rate(config)
    seconds = ctx.workload.audio_seconds
    samples = _whole_hops(ctx, round(seconds * rate), hop, rate)
    if per_token:  # Muse Spark: the forward adds the channel axis itself (input_values.unsqueeze(-1))
        shape: tuple[int, ...] = (ctx.batch, samples)
    else:  # DAC's first layer is Conv1d(1, ...) (modeling_dac.py): one channel unless the config says more
        channels = int(_codec_find(config, ("channels", "audio_channels")) or 1)
        shape = (ctx.batch, channels, samples)
    ctx.shapes[waveform] = (shape, "float")
    described = f"audio {seconds:.1f} s at {_khz(rate)}"
    semantic = find_field(config, ("semantic_model_config",))
    if "input_features" in ctx.required and semantic is not None:
        frames, width = _w2v_bert_features(semantic, seconds)
        ctx.shapes["input_features"] = ((ctx.batch, frames, width), "float")
        described += f" + semantic features {frames} frames x {width}"
    return described


def codec_latents(ctx: InputContext) -> str | None:
    """Codec decoders fed continuous latents ``(batch, hidden_size, frames)`` (Mimi's and Pocket TTS's decoders,
    VibeVoice's acoustic decoder): the frames the codec's encoder makes of the workload's clip, at its frame rate
    (``frame_rate``, or the sampling rate over the product of its up-sampling ratios)."""
    config = ctx.config
    name = "latents" if "latents" in ctx.required else None
    ratios = _ratios_product(config, "upsampling_ratios") or _ratios_product(config, "downsampling_ratios")
    decoder_alone = ctx.required == {"hidden_states"} and find_field(config, ("upsampling_ratios",)) is not None
    if name is None and decoder_alone and ratios and find_field(config, ("channels",)):
        name = "hidden_states"  # VibeVoice's decoder alone: its hidden states are the latents, channels first
    if name is None:
        return None
    rate = _rate(config)
    frame_rate = find_field(config, ("frame_rate",)) or (rate / ratios if ratios else None)
    width = find_field(config, ("hidden_size",))
    if not frame_rate or not isinstance(width, int):
        return None
    seconds = ctx.workload.audio_seconds
    frames = max(1, math.ceil(seconds * frame_rate))
    ctx.shapes[name] = ((ctx.batch, width, frames), "float")
    return f"latents {frames} frames x {width} ({seconds:.1f} s at {frame_rate:g} Hz, {_khz(rate)} audio)"


# Wav2Vec2-BERT's front end (SeamlessM4TFeatureExtractor): 80 filter-bank bins per 10 ms frame, consecutive frames
# stacked in pairs (its ``stride`` of 2), so ``feature_projection_input_dim`` (160) features per 20 ms
W2V_BERT_STRIDE = 2


def _w2v_bert_features(config: Any, seconds: float) -> tuple[int, int]:
    width = int(config.feature_projection_input_dim)
    return max(1, _mel_frames(seconds) // W2V_BERT_STRIDE), width


def _model_types(config: Any) -> set[str]:
    """The config's model type and its sub-configs' (a CTC head's ``encoder_config``, ...)."""
    towers = (config, *(getattr(config, name, None) for name in CODEC_TOWERS))
    return {getattr(c, "model_type", "") for c in towers if c is not None}


def stacked_features(ctx: InputContext) -> str | None:
    """Speech encoders fed filter-bank frames stacked along the feature axis, so each input step covers several
    10 ms frames: Wav2Vec2-BERT (pairs, ``feature_projection_input_dim`` wide), Fun-ASR-Nano (low frame rate:
    ``num_stacked_frames`` frames every 6th frame), Granite Speech 5 (each mel frame with its delta, in pairs)."""
    config, seconds = ctx.config, ctx.workload.audio_seconds
    if ctx.main != "input_features":
        return None
    mels = find_field(config, ("num_mel_bins",), ("encoder_config",))
    if isinstance(find_field(config, ("feature_projection_input_dim",)), int):
        frames, width = _w2v_bert_features(config, seconds)
        stacked = f"{W2V_BERT_STRIDE} stacked frames"
    elif isinstance(find_field(config, ("num_stacked_frames",)), int) and isinstance(mels, int):
        # FunAsrNanoFeatureExtractor: stacks num_frames_lfr frames, taking every stride_lfr-th (its default, 6)
        stride = int(_extractor_default("fun_asr_nano", "stride_lfr") or 6)
        frames, width = math.ceil(_mel_frames(seconds) / stride), int(config.num_stacked_frames) * mels
        stacked = f"{config.num_stacked_frames} stacked frames every {stride * 10} ms"
    elif "granite_speech5_encoder" in _model_types(config) and isinstance(mels, int):
        # one-off: modeling_granite_speech5.py's input_linear takes num_mel_bins * 4 (a frame and its delta, x2,
        # stacked in pairs, x2: GraniteSpeech5FeatureExtractor's delta_expansion and frame_stacking)
        frames, width = max(1, _mel_frames(seconds) // 2), mels * 4
        stacked = f"2 stacked frames of {mels} mel bins and their deltas"
    else:
        return None
    ctx.shapes["input_features"] = ((ctx.batch, frames, width), "float")
    return f"audio {seconds:.1f} s as {frames} frames x {width} features ({stacked})"


# Encoders descended from Whisper's, whose first layer convolves over the mel bins as channels (GLM-ASR's conv1,
# Voxtral Realtime's embedder) or whose forward unpacks (batch, mel bins, frames) (Qwen3-ASR's): their configs lack
# Whisper's max_source_positions, the field the generic rule (fixed_audio_frames) knows such a layout by
MEL_CHANNELS_FIRST = {"glmasr_encoder", "voxtral_realtime_encoder", "qwen3_asr_encoder"}


def mels_channels_first(ctx: InputContext) -> str | None:
    """Whisper-descended encoders taking any clip length as ``(batch, mel bins, frames)``, frames padded to whole
    windows where the encoder attends in windows (Qwen3-ASR: ``n_window * 2`` frames, as its extractor pads)."""
    config, seconds = ctx.config, ctx.workload.audio_seconds
    towers = ("audio_config", "encoder_config")
    streaming = isinstance(find_field(config, ("audio_length_per_tok",)), int)  # Voxtral Realtime: audio at every step
    needed = ctx.main == "input_features" or "input_features" in ctx.required or streaming
    if not needed or "input_features" not in ctx.params or not _model_types(config) & MEL_CHANNELS_FIRST:
        return None  # a speech LLM whose audio is optional (GLM-ASR) keeps its text-only pass
    mels = find_field(config, ("num_mel_bins",), towers)
    if not isinstance(mels, int):
        return None
    frames = _mel_frames(seconds)
    window = find_field(config, ("n_window",), towers)
    if isinstance(window, int) and frames % (2 * window):
        padded = math.ceil(frames / (2 * window)) * 2 * window
        ctx.notes.append(f"features padded to {padded} frames, whole {2 * window}-frame windows of the encoder")
        frames = padded
    ctx.shapes["input_features"] = ((ctx.batch, mels, frames), "float")
    if "input_features_mask" in ctx.params:
        ctx.shapes["input_features_mask"] = ((ctx.batch, frames), "ids")  # one per frame, every frame valid
    described = f"audio {seconds:.1f} s as {mels} mel bins x {frames} frames"
    per_token = find_field(config, ("audio_length_per_tok",))
    if "input_ids" in ctx.params and streaming:  # Voxtral Realtime: a token per audio step
        tokens = max(1, frames // per_token)  # its forward adds the audio embeddings to the token embeddings
        ctx.shapes["input_ids"] = ((ctx.batch, tokens), "ids")
        ctx.notes.append(
            f"text {tokens} tokens, one per {per_token} mel frames the streaming model aligns (asked "
            f"{ctx.workload.seq_len})"
        )
        described = f"text {tokens} tokens + {described}"
    return described


def mel_frames(ctx: InputContext) -> str | None:
    """Log-mel frames ``(batch, frames, mel bins)`` where the mel count is not where the generic rule looks: in the
    ASR tower's config (Nemotron 3.5 Transcribe's ``asr_config``, frames padded to whole ``subsampling_factor``
    steps as its processor pads), or implied by the sub-sampling convolutions (Gemma 4's audio tower: its
    input_proj_linear takes ``subsampling_conv_channels[0] // 4`` frequency rows after two stride-2 convolutions,
    so the mel count is ``subsampling_conv_channels[0]``, 128)."""
    config, seconds = ctx.config, ctx.workload.audio_seconds
    if ctx.main != "input_features" or find_field(config, ("num_mel_bins", "feature_size", "input_feat_size")):
        return None
    mels = find_field(config, ("num_mel_bins",), ("asr_config",))
    channels = find_field(config, ("subsampling_conv_channels",))
    if mels is None and isinstance(channels, (list, tuple)) and channels:
        mels = channels[0]
    if not isinstance(mels, int):
        return None
    frames = _mel_frames(seconds)
    step = find_field(config, ("subsampling_factor",), ("asr_config",))
    if isinstance(step, int) and frames % step:
        padded = math.ceil(frames / step) * step
        ctx.notes.append(f"features padded to {padded} frames, whole {step}-frame steps of the encoder")
        frames = padded
    ctx.shapes["input_features"] = ((ctx.batch, frames, mels), "float")
    return f"audio {seconds:.1f} s as {frames} frames x {mels} mel bins"


def bare_encoder_decoder(ctx: InputContext) -> str | None:
    """SpeechT5's bare model: encoder and decoder without their pre-nets (those belong to the task heads), so both
    take hidden states ``(batch, steps, hidden_size)``: the encoder the steps its speech pre-net makes of the clip
    (the sampling rate over the product of ``conv_stride``), the decoder the workload's length."""
    config, seconds = ctx.config, ctx.workload.audio_seconds
    strides = find_field(config, ("conv_stride",))
    width = find_field(config, ("hidden_size",))
    bare = {"input_values", "decoder_input_values"} <= set(ctx.params) and "labels" not in ctx.params  # heads: pre-nets
    if not bare or not strides or not isinstance(width, int):
        return None
    rate = _rate(config)
    steps = max(1, round(seconds * rate) // math.prod(strides))
    ctx.shapes["input_values"] = ((ctx.batch, steps, width), "float")
    ctx.shapes["decoder_input_values"] = ((ctx.batch, ctx.workload.seq_len, width), "float")
    return (
        f"encoder states {steps} x {width} ({seconds:.1f} s of {_khz(rate)} audio at the speech pre-net's stride) "
        f"+ decoder states {ctx.workload.seq_len} x {width}"
    )


def codes_per_step(ctx: InputContext) -> str | None:
    """Kyutai Speech-to-Text: each step carries a text token and one code per codebook of its Mimi codec, shaped
    ``(batch, steps, 1 + num_codebooks)`` (its embedder offsets each column into its own vocabulary); the workload's
    length in steps, one per codec frame."""
    config = ctx.config
    books = find_field(config, ("num_codebooks",))
    codec = find_field(config, ("codec_config",))
    per_book = find_field(config, ("codebook_vocab_size",))  # the offset between columns (CSM: no text column)
    if ctx.main != "input_ids" or not isinstance(books, int) or codec is None or not isinstance(per_book, int):
        return None
    steps = ctx.workload.seq_len
    ctx.shapes["input_ids"] = ((ctx.batch, steps, 1 + books), "ids")
    frame_rate = find_field(codec, ("frame_rate",))
    audio = f", {steps / frame_rate:.1f} s of audio at {frame_rate:g} Hz" if frame_rate else ""
    return f"{steps} steps of 1 text token + {books} audio codes{audio}"


def encoder_states(ctx: InputContext) -> str | None:
    """A head over a speech encoder's output (Nemotron 3.5 Transcribe's word-timestamp model): its main input is
    the encoder's states ``(batch, frames, hidden_size)``, the workload's length in frames."""
    width = find_field(ctx.config, ("hidden_size",))
    if ctx.main != "inputs_embeds" or "inputs_embeds" not in ctx.required or not isinstance(width, int):
        return None
    ctx.shapes["inputs_embeds"] = ((ctx.batch, ctx.workload.seq_len, width), "float")
    return f"encoder states {ctx.workload.seq_len} frames x {width}"


def codebook_decoder(ctx: InputContext) -> str | None:
    """Dia: a text encoder and a decoder over audio codes, one per codebook channel at each step, so the decoder's
    ids are ``(batch, steps, num_channels)``; the workload's length for both."""
    decoder = find_field(ctx.config, ("decoder_config",))
    channels = find_field(decoder, ("num_channels",)) if decoder is not None else None
    if "decoder_input_ids" not in ctx.params or not isinstance(channels, int) or ctx.main != "input_ids":
        return None
    steps = ctx.workload.seq_len
    ctx.shapes["decoder_input_ids"] = ((ctx.batch, steps, channels), "ids")
    return f"{steps} decoder steps x {channels} audio codebooks"


LAYOUTS: tuple[Layout, ...] = (
    codebook_decoder,
    codes_per_step,
    encoder_states,
    codec_waveform,
    codec_latents,
    stacked_features,
    mels_channels_first,
    mel_frames,
    bare_encoder_decoder,
)

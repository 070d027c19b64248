"""Property tests (hypothesis): validation and config parsing answer any input with a result or one
clear ValueError, never another exception; workloads round-trip; the CLI's parser never raises."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from efficiency.cli import main as cli
from efficiency.models.loading import (
    ModelLoadError,
    check_workload,
    known_model_types,
    load_config_file,
    spec_from_config_dict,
)
from efficiency.specs import DTYPES, MAX_BATCH_SIZE, MAX_IMAGE_SIZE, MAX_SEQ_LEN, MODALITIES, MODES, Workload
from efficiency.validation import InputError, check_upload, display_safe, printable

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORKLOAD_FIELDS = [f.name for f in fields(Workload)]

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(DTYPES + MODES),
    st.lists(st.integers(), max_size=2),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
CONFIG_KEYS = [
    "model_type",
    "architectures",
    "auto_map",
    "trust_remote_code",
    "max_position_embeddings",
    "n_positions",
    "n_ctx",
    "patch_size",
    "window_size",
    "pad_token_id",
    "image_size",
    "hidden_size",
]
model_types = st.sampled_from(["gpt2", "bert", "roberta", "vit", "deit", "swin", "t5", "evil-net", ""]) | st.text(
    max_size=8
)
config_dicts = st.dictionaries(
    st.sampled_from(CONFIG_KEYS) | st.text(max_size=12), json_values, max_size=8
) | st.builds(
    lambda model_type, rest: {**rest, "model_type": model_type},
    model_types,
    st.dictionaries(st.sampled_from(CONFIG_KEYS), json_values, max_size=6),
)


@FAST
@given(st.dictionaries(st.sampled_from(WORKLOAD_FIELDS), anything))
def test_any_workload_fields_give_a_workload_or_a_value_error_naming_the_field(values):
    try:
        workload = Workload(**values)
    except ValueError as error:
        named = str(error).split(":", 1)[0]
        assert named in values, f"{error} does not name a field that was given"
        assert "\n" not in str(error)
        return
    assert 1 <= workload.batch_size <= MAX_BATCH_SIZE and 1 <= workload.seq_len <= MAX_SEQ_LEN
    assert 8 <= workload.image_size <= MAX_IMAGE_SIZE and workload.dtype in DTYPES and workload.mode in MODES


valid_workloads = st.builds(
    Workload,
    batch_size=st.integers(1, MAX_BATCH_SIZE),
    seq_len=st.integers(1, MAX_SEQ_LEN),
    image_size=st.integers(8, MAX_IMAGE_SIZE),
    dtype=st.sampled_from(DTYPES),
    mode=st.sampled_from(MODES),
)


@FAST
@given(valid_workloads, st.sampled_from(MODALITIES))
def test_workload_for_modality_round_trips(workload, modality):
    shown = workload.for_modality(modality)
    assert Workload(**shown).for_modality(modality) == shown
    assert Workload(**workload.to_dict()) == workload
    # the shape fields a modality's inputs use: tokens for text (and a speech model's decoder), pixels for images
    uses_tokens, uses_pixels = modality in {"text", "audio", "multimodal"}, modality in {"vision", "multimodal"}
    assert ("seq_len" in shown) == uses_tokens and ("image_size" in shown) == uses_pixels
    assert json.loads(json.dumps(shown)) == shown  # a store key part: plain JSON


@FAST
@given(config_dicts)
def test_spec_from_any_config_dict_is_a_spec_or_a_clear_error(config):
    try:
        spec = spec_from_config_dict(config, "hostile", "local", "config.json")
    except ValueError as error:  # ModelLoadError and RemoteCodeRefused are ValueErrors
        assert isinstance(error, ModelLoadError) and "\n" not in str(error)
        return
    assert spec.model_type in known_model_types()
    assert not {"auto_map", "trust_remote_code", "model_type"} & set(spec.config)
    try:  # the limits read from the config are checked as whole numbers, whatever the config holds
        check_workload(spec, Workload())
    except ModelLoadError as error:
        assert "\n" not in str(error)


@FAST
@given(json_values)
def test_spec_from_non_dicts_is_refused(value):
    assume(not isinstance(value, dict))
    with pytest.raises(ModelLoadError, match="must hold a JSON object"):
        spec_from_config_dict(value, "hostile", "local", "config.json")


@settings(FAST, max_examples=60)
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_config_files_and_uploads_of_any_bytes_parse_or_fail_clearly(tmp_path_factory, data):
    path = Path(tmp_path_factory.mktemp("cfg")) / "config.json"
    path.write_bytes(data)
    try:
        parsed = load_config_file(path, "hostile")
    except ModelLoadError as error:
        assert "\n" not in str(error)
    else:
        assert json.dumps(parsed) == json.dumps(json.loads(data.decode("utf-8")))
    try:
        uploaded = check_upload(data)
    except InputError as error:
        assert "\n" not in str(error) and str(error).startswith("upload ")
    else:
        assert isinstance(uploaded, dict)


@FAST
@given(st.text())
def test_printable_and_display_safe_never_leak_control_characters_or_markup(text):
    shown = printable(text, None)
    assert all(ch.isprintable() or unicodedata.category(ch) == "Zs" for ch in shown)  # spaces stay spaces
    safe = display_safe(text, None)
    assert "<" not in safe and ">" not in safe


class _StubCommands(dict):
    """Dispatch that only records: the property is about parsing, not about profiling."""

    def __getitem__(self, name):
        return lambda args: 0


TOKENS = [
    "profile",
    "models",
    "hardware",
    "list",
    "estimate",
    "gpt2",
    "bert-base",
    "--batch-size",
    "--seq-len",
    "--image-size",
    "--dtype",
    "float16",
    "--mode",
    "training",
    "--metrics",
    "all",
    "--device",
    "--threads",
    "--repeats",
    "--timeout",
    "--db",
    "--json",
    "--csv",
    "--fresh",
    "--hardware",
    "-h",
    "--trust-remote-code",
]
argv_lists = st.lists(
    st.sampled_from(TOKENS) | st.text(max_size=8) | st.integers(-5, 10**10).map(str) | st.floats().map(str),
    max_size=7,
)


@settings(FAST, max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=argv_lists)
def test_cli_parsing_of_any_argv_returns_a_status_and_never_raises(monkeypatch, capsys, argv):
    """capsys and monkeypatch are shared by the examples: each example reads its own output first."""
    monkeypatch.setattr(cli, "COMMANDS", _StubCommands(cli.COMMANDS))
    capsys.readouterr()
    status = cli.main(argv)
    captured = capsys.readouterr()
    assert isinstance(status, int) and status in {0, 2}
    if status == 2:
        err = captured.err.strip()
        assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
        assert err.isprintable()


size_fields = st.sampled_from(
    ["n_layer", "n_embd", "n_head", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"]
)
size_values = st.integers(-3, 48) | st.none() | st.text(max_size=3) | st.floats(-2, 40) | st.booleans()


@settings(FAST, max_examples=30)
@given(st.sampled_from(["gpt2", "bert", "vit", "t5"]), st.dictionaries(size_fields, size_values, max_size=4))
def test_building_any_small_config_on_meta_gives_a_model_or_a_model_load_error(model_type, sizes):
    """Whatever sizes a config declares, transformers' own failures arrive as one ModelLoadError line."""
    from efficiency.models.loading import build_model

    spec = spec_from_config_dict({"model_type": model_type, **sizes}, "hostile", "local", "config.json")
    try:
        build_model(spec, device="meta")
    except ModelLoadError as error:
        assert "\n" not in str(error)

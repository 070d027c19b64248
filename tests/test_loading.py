"""Resolving models: catalog ids and aliases, local folders, the Hub offline; clear errors, no remote code."""

from __future__ import annotations

import json

import pytest

from efficiency.models.catalog import UnknownModelError
from efficiency.models.inputs import fit_workload
from efficiency.models.loading import ModelLoadError, RemoteCodeRefused, check_workload, resolve
from efficiency.specs import Workload


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_catalog_id_alias_and_hub_id_resolve_to_one_entry():
    assert resolve("vit-b16").id == resolve("google/vit-base-patch16-224").id
    assert resolve("BERT-BASE").id == "bert-base-uncased"
    assert resolve("mt-nlg-530b").hf_id is None


def test_unknown_id_offline_names_closest_ids_and_the_folder_option():
    with pytest.raises(UnknownModelError) as err:
        resolve("bert-bse-uncased")
    message = str(err.value)
    assert "bert-base-uncased" in message
    assert "offline" in message
    assert "config.json" in message
    assert "\n" not in message


def _folder(tmp_path, config) -> str:
    (tmp_path / "config.json").write_text(json.dumps(config) if not isinstance(config, str) else config)
    return str(tmp_path)


def test_local_folder_builds_from_its_config(tmp_path):
    spec = resolve(
        _folder(
            tmp_path,
            {
                "model_type": "bert",
                "hidden_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "intermediate_size": 64,
                "architectures": ["BertForMaskedLM"],
            },
        )
    )
    assert spec.origin == "local" and spec.model_type == "bert" and spec.modality == "text"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: str(p / "missing"), "no such folder"),
        (lambda p: (p / "f.txt").write_text("x") and str(p / "f.txt"), "is a file"),
        (lambda p: str(p), "no config.json"),
        (lambda p: _folder(p, "{not json"), "not valid JSON"),
        (lambda p: _folder(p, ""), "empty"),
        (lambda p: _folder(p, {"hidden_size": 4}), "no 'model_type'"),
        (lambda p: _folder(p, [1, 2]), "JSON object"),
    ],
)
def test_bad_local_folders_give_one_line_errors(tmp_path, make, expected):
    path = make(tmp_path)
    with pytest.raises(ModelLoadError) as err:
        resolve(path)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_remote_code_architecture_is_refused_and_nothing_is_imported(tmp_path):
    marker = tmp_path / "ran.txt"
    (tmp_path / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    folder = _folder(
        tmp_path,
        {"model_type": "evil-net", "auto_map": {"AutoModel": "modeling_evil.EvilModel"}},
    )
    with pytest.raises(RemoteCodeRefused) as err:
        resolve(folder)
    assert "trust_remote_code" in str(err.value)
    assert not marker.exists()


def test_auto_map_on_a_known_architecture_is_dropped(tmp_path):
    folder = _folder(
        tmp_path,
        {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2, "auto_map": {"AutoModel": "x.Y"}},
    )
    spec = resolve(folder)
    assert "auto_map" not in spec.config
    assert "ignored" in spec.note


def test_workload_limits_are_checked_against_the_model():
    assert fit_workload(resolve("bert-base-uncased"), Workload(seq_len=4096))[0].seq_len == 512
    with pytest.raises(ModelLoadError, match="multiple of the patch size 16"):
        check_workload(resolve("vit-b16"), Workload(image_size=230))


@pytest.mark.parametrize(
    ("field", "value"),
    [("batch_size", 0), ("batch_size", -1), ("batch_size", 10**9), ("seq_len", 0), ("dtype", "int4"), ("mode", "x")],
)
def test_workload_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        Workload(**{field: value})


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("num_hidden_layers", -3, "config field 'num_hidden_layers' must be 0 or more layers, got -3"),
        ("hidden_size", 0, "config field 'hidden_size' must be between 1 and 16777216, got 0"),
        ("vocab_size", -5, "config field 'vocab_size' must be between 1 and 16777216, got -5"),
        ("intermediate_size", 10**9, "config field 'intermediate_size' must be between 1 and 16777216"),
    ],
)
def test_sizes_no_model_has_are_refused_in_one_line_naming_the_field(tmp_path, field, value, expected):
    from efficiency.counters.static import profile_static

    config = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, field: value}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as caught:
        profile_static(resolve(str(tmp_path)), Workload(seq_len=8))
    assert expected in str(caught.value) and "\n" not in str(caught.value)

"""A config.json uploaded on the Compare page: profiled like a local folder, known by its contents; a hostile upload
ends in one clear line and runs nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compare_view import compare_table
from streamlit.testing.v1 import AppTest

from efficiency.models import loading
from efficiency.models.upload import spec_from_upload

ROOT = Path(__file__).resolve().parents[1]
TINY_BERT = {
    "model_type": "bert",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 1000,
    "max_position_embeddings": 256,
}


def test_an_uploaded_config_is_known_by_its_contents(data_dir):
    spec = spec_from_upload(json.dumps(TINY_BERT).encode(), "tiny-bert.json")
    assert spec.id.startswith("local:") and spec.name == "tiny-bert (uploaded)"
    again = spec_from_upload(json.dumps(TINY_BERT, indent=4).encode(), "renamed.json")  # other spacing, same model
    assert again.id == spec.id
    assert loading.resolve(spec.id).config == spec.config  # a worker builds exactly what was uploaded
    edited = spec_from_upload(json.dumps({**TINY_BERT, "num_hidden_layers": 3}).encode(), "tiny-bert.json")
    assert edited.id != spec.id


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG not a config", "not UTF-8 text"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must hold a JSON object"),
        (b" " * 1_000_001, "the limit is 1000000"),
        (json.dumps({"model_type": "evilnet", "auto_map": {"AutoModel": "evil.Model"}}).encode(), "trust_remote_code"),
    ],
)
def test_a_hostile_upload_is_refused_in_one_line(data_dir, content, expected):
    with pytest.raises(ValueError) as caught:
        spec_from_upload(content, "config.json")
    message = str(caught.value)
    assert expected in message and "\n" not in message


def test_the_compare_page_profiles_an_uploaded_config(data_dir):
    at = AppTest.from_file(str(ROOT / "pages/1_Compare.py"), default_timeout=120)
    at.query_params["models"] = "electra-small-discriminator"
    at.run()
    at.file_uploader(key="cmp_upload").upload("tiny-bert.json", json.dumps(TINY_BERT).encode(), "application/json")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.text_input(key="cmp_extra").value.startswith("local:")
    at.button(key="cmp_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert set(compare_table(at)["Model"]) == {"ELECTRA-small discriminator", "tiny-bert (uploaded)"}


def test_the_compare_page_shows_a_hostile_upload_in_one_line_and_runs_nothing(data_dir):
    at = AppTest.from_file(str(ROOT / "pages/1_Compare.py"), default_timeout=120).run()
    evil = json.dumps({"model_type": "evilnet", "auto_map": {"AutoModel": "evil.Model"}}).encode()
    at.file_uploader(key="cmp_upload").upload("evil.json", evil, "application/json")
    at.run()
    assert not at.exception
    (error,) = at.error
    shown = error.value.replace("\\", "")  # the page escapes Markdown
    assert "evil.json" in shown and "trust_remote_code" in shown and "\n" not in shown.strip()
    assert at.text_input(key="cmp_extra").value == ""  # nothing joined the models, nothing ran

"""Issue 19, item 2: a model's identity is what defines it.

A local folder is always that folder's config (never re-read as a catalog name, however the path is spelt), and
it is known by its contents: ``local:<hash>``. An edited config is a new model, so a result stored for the old
one is never reused for it; two folders holding the same config are one model and share results. Tiny configs
keep the measured runs to seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from efficiency.cli.main import main
from efficiency.models.loading import LOCAL_ID_PATTERN, ModelLoadError, resolve
from efficiency.run.runner import Job, LocalExecutor, Runner
from efficiency.store.store import ResultStore

TINY_BERT = {
    "model_type": "bert",
    "architectures": ["BertModel"],
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 1000,
    "max_position_embeddings": 64,
}
TINY_PARAMS = 52_320  # embeddings 36,224 + 2 layers of 8,544 + pooler 1,056 (GPT-2 has 124,439,808)
MEASURE = ["--metrics", "all", "--seq-len", "16", "--repeats", "1", "--json"]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Offline, a data folder of this test's own (where local configs are kept), working in ``tmp_path``."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def folder(name: str, config: dict, spacing: int | None = None) -> Path:
    path = Path(name)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config, indent=spacing))
    return path


def profile(capsys: pytest.CaptureFixture, *argv: str) -> list[dict]:
    main(["profile", *argv])
    return json.loads(capsys.readouterr().out)


def test_a_folder_is_its_config_however_its_path_is_spelt(isolated: Path) -> None:
    folder("gpt2", TINY_BERT)
    spellings = ["gpt2/", "./gpt2", "./gpt2/", str(isolated / "gpt2"), f"{isolated / 'gpt2'}/"]
    specs = [resolve(name) for name in spellings]
    assert len({spec.id for spec in specs}) == 1 and LOCAL_ID_PATTERN.match(specs[0].id)
    spec = specs[0]
    assert spec.origin == "local" and spec.name == "gpt2 (local)" and len(spec.config_sha256) == 64
    again = resolve(spec.id)  # what the job's worker does: the id, never the name, is resolved again
    assert (again.id, again.config, again.name, again.config_sha256) == (
        spec.id,
        spec.config,
        spec.name,
        spec.config_sha256,
    )
    assert resolve("gpt2").origin == "catalog"  # a bare name stays the catalog's


def test_the_gpt2_folder_is_counted_and_measured_as_the_tiny_model_it_holds(isolated: Path, capsys) -> None:
    folder("gpt2", TINY_BERT)
    static = profile(capsys, "gpt2/", "./gpt2", "--seq-len", "16", "--json")
    assert [row["params"] for row in static] == [TINY_PARAMS, TINY_PARAMS]
    db = str(isolated / "results.db")
    (measured,) = profile(capsys, "gpt2/", *MEASURE, "--db", db)
    assert measured["error"] is None and measured["measured"] is True and not measured.get("reused")
    assert measured["params"] == TINY_PARAMS and measured["name"] == "gpt2 (local)"
    (spelt_otherwise,) = profile(capsys, str(isolated / "gpt2"), *MEASURE, "--db", db)  # no trailing slash
    assert spelt_otherwise["reused"] is True and spelt_otherwise["params"] == TINY_PARAMS
    assert {row.model for row in ResultStore(db).list()} == {static[0]["model"]}  # never stored as "gpt2"


def test_an_edited_config_is_a_new_model_and_equal_configs_share_results(isolated: Path, capsys) -> None:
    db = str(isolated / "results.db")
    folder("mine", TINY_BERT)
    (first,) = profile(capsys, "./mine", *MEASURE, "--db", db)
    (again,) = profile(capsys, "./mine", *MEASURE, "--db", db)
    assert not first.get("reused") and again["reused"] is True and again["params"] == TINY_PARAMS

    folder("mine", {**TINY_BERT, "num_hidden_layers": 3})  # edited in place
    (edited,) = profile(capsys, "./mine", *MEASURE, "--db", db)
    assert not edited.get("reused") and edited["measured"] is True
    assert edited["params"] == TINY_PARAMS + 8_544 and edited["model"] != first["model"]

    folder("copy", dict(reversed(TINY_BERT.items())), spacing=4)  # the first config, spelt otherwise
    (shared,) = profile(capsys, "./copy", *MEASURE, "--db", db)
    assert shared["reused"] is True and shared["model"] == first["model"] and shared["params"] == TINY_PARAMS


def test_what_does_not_define_the_model_does_not_change_its_id() -> None:
    plain = resolve(f"./{folder('a', TINY_BERT)}")
    dressed = {**TINY_BERT, "_name_or_path": "somewhere/else", "transformers_version": "4.0.0"}
    assert resolve(f"./{folder('b', dressed, spacing=2)}").id == plain.id
    assert resolve(f"./{folder('c', {**TINY_BERT, 'hidden_size': 64})}").id != plain.id


def test_an_unknown_or_altered_local_id_is_refused_in_one_line(isolated: Path) -> None:
    with pytest.raises(ModelLoadError, match="no config with this id was picked on this machine"):
        resolve("local:0123456789abcdef")
    spec = resolve(f"./{folder('kept', TINY_BERT)}")
    (copy,) = (isolated / "data" / "local-configs").glob("*.json")
    kept = json.loads(copy.read_text())
    kept["config"]["hidden_size"] = 64
    copy.write_text(json.dumps(kept))
    with pytest.raises(ModelLoadError) as caught:
        resolve(spec.id)
    assert "no longer matches the id" in str(caught.value) and "\n" not in str(caught.value)


def test_a_worker_finds_a_local_config_kept_after_its_server_started(
    executor: LocalExecutor, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forkserver's environment dates from its start; a job reads the data folder the parent uses now."""
    executor.warm_up()
    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(isolated / "later"))
    spec = resolve(f"./{folder('late', TINY_BERT)}")
    job = Job(spec.id, {"batch_size": 1, "seq_len": 8, "dtype": "float32", "mode": "inference"}, metrics="static")
    (result,) = Runner(executor).run([job])
    assert result.error is None and result.params == TINY_PARAMS

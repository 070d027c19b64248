"""Hostile input through the pages (streamlit AppTest): each case shows a clear ``st.error`` or warning,
rendered as text (never HTML, Markdown links or raw control characters), and the page keeps working.

Cases already in tests/test_pages.py (a missing local folder, a Markdown-link folder name, bad batch /
dtype / device / threads in the URL) are not repeated here.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from efficiency.results import Result
from efficiency.store.store import ResultStore
from tests.compare_view import compare_table

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 90
BIDI_AND_C1 = ("\u202e", "\u200b", "\x9b")


def app(path: str = "pages/1_Compare.py", **params) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT)
    for name, value in params.items():
        at.query_params[name] = value
    return at.run()


def shown_text(at: AppTest) -> str:
    """Everything the page wrote as Markdown-rendered text."""
    parts = [e.value for kind in ("error", "warning", "info", "markdown", "caption", "success") for e in at.get(kind)]
    return "\n".join(str(part) for part in parts)


def assert_inert(text: str) -> None:
    """Markup is escaped (``\\<``, ``\\]\\(``, ``\\$``): it renders as the characters typed, not as HTML or a link."""
    assert not re.search(r"(?<!\\)[<$]", text) and "](" not in text
    assert not any(ord(ch) < 32 and ch != "\n" for ch in text) and "\x7f" not in text


def with_extra(text: str, **params) -> AppTest:
    at = app(models=["gpt2"], **params)
    at.text_input(key="cmp_extra").set_value(text).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("<img src=x onerror=alert(1)>", "not a valid Hub id"),
        ("<script>alert(document.cookie)</script>", "not a valid Hub id"),
        ("**bold** and _it_ and $x^2$", "not a valid Hub id"),
        ("gpt2\x1b[31m", "control or invisible characters"),
        ("../../etc/passwd", ""),
        ("someorg/some-model", "offline"),
        ("frobnicate-9000", "unknown model"),
    ],
    ids=["img-onerror", "script", "markdown-latex", "ansi-escape", "path-traversal", "hub-offline", "unknown-id"],
)
def test_hostile_free_field_names_show_one_escaped_error_and_the_page_goes_on(data_dir, extra, expected):
    at = with_extra(extra)
    assert len(at.error) == 1, [e.value for e in at.error]
    message = at.error[0].value
    assert expected.replace("_", "\\_") in message or expected in message.replace("\\", "")
    assert_inert(shown_text(at))
    assert at.multiselect(key="cmp_models").value == ["gpt2"]  # the rest of the page is untouched


def test_bidi_and_invisible_characters_never_reach_the_page(data_dir):
    at = with_extra("evil\u202eexe.txt, zero\u200bwidth, c1\x9b31m")
    assert len(at.error) == 3
    assert not any(ch in shown_text(at) for ch in BIDI_AND_C1)


def test_too_many_and_too_long_free_field_entries_are_cut_not_run(data_dir):
    at = with_extra(", ".join(f"no-such-model-{i}" for i in range(50)))
    assert 1 <= len(at.error) <= 10  # the free field takes at most 10 names
    at = with_extra("x" * 5000)
    assert len(at.error) <= 1


@pytest.mark.parametrize(
    "params",
    [
        {"extra": "gpt2\x00\x1b[2J"},
        {"extra": "a" * 5000},
        {"models": ["<script>alert(1)</script>", "**x**"], "seq": "99999999999999999999"},
        {"method": "<b>evil</b>", "x": "javascript:alert(1)", "ref": "\x1b[31m", "size": "$x$", "color": "[a](b)"},
        {"run": "measured", "device": "cuda:7", "threads": "0", "image": "1e9", "mode": "rm -rf /"},
    ],
    ids=["extra-control", "extra-long", "models-html", "chart-options", "run-options"],
)
def test_hostile_query_parameters_are_dropped_and_the_page_renders(data_dir, params):
    at = app(**params)
    assert not at.exception, [e.value for e in at.exception]
    assert_inert(shown_text(at))
    assert at.text_input(key="cmp_extra").value == ""  # a hostile extra never lands in the field


def hostile_store(data_dir: Path) -> ResultStore:
    data_dir.mkdir(parents=True, exist_ok=True)
    store = ResultStore(str(data_dir / "results.db"))
    fields = {"workload": {"batch_size": 1, "seq_len": 8, "dtype": "float32", "mode": "inference"}, "metrics": "static"}
    names = ["<img src=x onerror=alert(1)>", "**[click](javascript:alert(1))**", "bad\x1b[2Jrow", "corrupt"]
    for name in names:
        result = {"model": name, "workload": fields["workload"], "params": 10, "flops": 20, "error": None}
        store.put(Result.from_dict(result), {"model": name, **fields, "hardware": "none", "env": {}})
    failed = Result.from_dict({"model": "failed", "error": "<b>boom</b> **x**"})
    store.put(failed, {"model": "failed", **fields, "hardware": "h", "env": {}})
    with sqlite3.connect(data_dir / "results.db") as raw:
        raw.execute("UPDATE results SET result = '{not json' WHERE model = 'corrupt'")
    return store


def test_results_page_with_hostile_names_and_a_corrupt_row_renders_them_as_text(data_dir):
    hostile_store(data_dir)
    at = app("pages/2_Results.py")
    assert not at.exception, [e.value for e in at.exception]
    assert_inert(shown_text(at))
    table = at.dataframe[0].value
    assert len(table) == 5
    assert "stored result is unreadable (JSONDecodeError)" in set(table["Error"])


@pytest.mark.parametrize("page", ["pages/1_Compare.py", "pages/2_Results.py", "app.py"])
@pytest.mark.parametrize("bad", ["folder", "not-a-database", "malformed-url"])
def test_a_bad_database_location_is_one_error_and_the_page_goes_on(data_dir, monkeypatch, tmp_path, page, bad):
    notes = tmp_path / "notes.db"
    notes.write_text("my notes, not a database " * 100)
    location = {"folder": str(tmp_path), "not-a-database": str(notes), "malformed-url": "postgresql://u:pw@h:port/d"}
    monkeypatch.setenv("EFFICIENCY_DB", location[bad])
    at = app(page, models=["gpt2"]) if page != "app.py" else app(page)
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    if page == "app.py":  # the home page falls back to counting three small models, without the store
        assert at.title and at.get("plotly_chart")
    else:
        assert any("Results store unavailable" in error for error in errors), errors
    assert all("\n" not in error and "pw@" not in error for error in errors)


def test_a_config_with_auto_map_run_from_the_page_never_runs_its_code(data_dir, tmp_path):
    marker = tmp_path / "MARKER"
    model = tmp_path / "evil_model"
    model.mkdir()
    side_effect = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\nraise SystemExit(1)\n"
    for module in ("modeling_evilpage", "configuration_evilpage", "__init__"):
        (model / f"{module}.py").write_text(side_effect)
    config = {
        "model_type": "gpt2",
        "n_layer": 1,
        "n_embd": 32,
        "n_head": 2,
        "n_positions": 64,
        "vocab_size": 128,
        "trust_remote_code": True,
        "auto_map": {"AutoConfig": "configuration_evilpage.C", "AutoModel": "modeling_evilpage.M"},
    }
    (model / "config.json").write_text(json.dumps(config))
    at = app(models="", extra=str(model), seq="16")
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(compare_table(at)) == 1
    assert not marker.exists() and not [name for name in sys.modules if "evilpage" in name]


# ---------------------------------------------------------------- 50 KB bad values (issue 19, item 6)

HUGE = 50_000
SHOWN = 200  # validation.MAX_SHOWN_CHARS: the most of a bad value any message repeats


def longest_run(text: str, char: str) -> int:
    return max((len(run) for run in re.findall(f"{re.escape(char)}+", text)), default=0)


@pytest.mark.parametrize("name", ["models", "batch", "seq", "image", "dtype", "mode", "run", "device", "threads"])
def test_a_50_kb_link_value_is_shown_cut_to_200_characters(data_dir, name):
    char = "9" if name in {"batch", "seq", "image", "threads"} else "x"
    at = app(**{name: char * HUGE})
    assert not at.exception, [e.value for e in at.exception]
    messages = [m.value.replace("\\", "") for kind in ("warning", "error", "info") for m in at.get(kind)]
    about = "models not in the catalog" if name == "models" else f"{name}: "
    said = [m for m in messages if m.startswith(f"From the link: {about}")]
    assert len(said) == 1 and "…" in said[0], messages
    assert all(longest_run(m, char) < SHOWN and len(m) < 3 * SHOWN for m in messages), [m[:300] for m in messages]


def test_a_long_name_in_the_free_field_is_one_error_showing_at_most_200_characters_of_it(data_dir):
    at = with_extra("m" * HUGE)  # the field takes 1,000 characters of it
    (error,) = [e.value.replace("\\", "") for e in at.error]
    assert longest_run(error, "m") < SHOWN and "…" in error and len(error) < 4 * SHOWN
    assert error.endswith("or a local folder that holds a config.json")  # the advice survives the cut

"""Report card: valid Markdown tables and LaTeX tabular syntax, with units, sources and setup.

The checkers below parse the output the way a renderer or LaTeX would have to, instead of comparing text:
same number of cells on every Markdown row and a separator row; balanced braces, a column spec that
matches the ``&`` count of every row, ``\\\\`` row ends and no unescaped special character in LaTeX.
"""

from __future__ import annotations

import re

import pytest

from efficiency.analysis.report import (
    Estimate,
    Row,
    frontier_table,
    latex_escape,
    make_setup,
    rows_of,
    to_latex,
    to_markdown,
)
from efficiency.counters.static import profile_static
from efficiency.results import Result
from efficiency.specs import Workload
from tests.test_experiments import _cli

MODELS = ["bert-base-uncased", "gpt2", "google/vit-base-patch16-224"]
SETUP = {
    "hardware": "Test CPU, 2 threads",
    "device": "cpu",
    "software": {"torch": "2.13.0", "transformers": "5.23.0"},
    "os": "Linux",
    "date": "2026-01-01",
}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def static_rows() -> list[Row]:
    return rows_of([profile_static(model, Workload(seq_len=32)).to_result() for model in MODELS])


def measured_row(static: Row) -> Row:
    """A static result with the fields the runner adds after measuring (values made up: only formats are tested)."""
    measured = {
        "measured": True,
        "hardware": {"id": "local-cpu", "name": "Test CPU", "device": "cpu"},
        "latency_ms": {"median": 12.5, "p10": 12.0, "p90": 14.25, "n": 10},
        "throughput_per_s": 80.0,
        "peak_memory_bytes": 512_000_000,
        "training_step_ms": {"median": 40.0, "p10": 39.0, "p90": 45.0, "n": 3},
    }
    return Row(Result.from_dict({**static.result.to_dict(), **measured}))


# ---- checkers ---------------------------------------------------------------------------------------


def markdown_table(text: str) -> list[list[str]]:
    """The first pipe table of a Markdown text as cells; asserts GitHub-flavoured table syntax."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len(lines) >= 3, "a header, a separator and at least one row"
    rows = [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    assert all(line.endswith("|") for line in lines)
    widths = {len(row) for row in rows}
    assert len(widths) == 1, f"rows with different cell counts: {widths}"
    assert all(re.fullmatch(r":?-{3,}:?", cell) for cell in rows[1]), rows[1]
    assert not any(re.fullmatch(r":?-{3,}:?", cell) for row in rows[2:] for cell in row)
    return [rows[0], *rows[2:]]


def column_count(spec: str) -> int:
    """Columns in a tabular spec such as ``lll|rr`` or ``lp{0.6\\linewidth}``."""
    spec = re.sub(r"[pmb]\{[^{}]*(\{[^{}]*\}[^{}]*)*\}", "p", spec)
    spec = re.sub(r"[@!>]\{[^{}]*\}|\|", "", spec)
    assert re.fullmatch(r"[lcrp]+", spec), spec
    return len(spec)


def check_latex(text: str) -> int:
    """Assert valid tabular syntax; returns the number of tabulars checked."""
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("%"))
    depth = 0
    for match in re.finditer(r"\\\\|\\[{}]|[{}]", code):
        token = match.group()
        depth += 1 if token == "{" else -1 if token == "}" else 0
        assert depth >= 0, "a } closes nothing"
    assert depth == 0, "unbalanced braces"
    assert code.count(r"\begin{tabular}") == code.count(r"\end{tabular}")
    unescaped = re.findall(r"(?<!\\)[%#_$]", code)
    assert not unescaped, f"unescaped specials: {unescaped}"
    tabulars = re.findall(
        r"\\begin\{tabular\}\{((?:[^{}]|\{[^{}]*(?:\{[^{}]*\})?[^{}]*\})*)\}(.*?)\\end\{tabular\}", code, re.S
    )
    for spec, body in tabulars:
        columns = column_count(spec)
        rows = [r.strip() for r in body.strip().splitlines() if r.strip() and r.strip() != r"\hline"]
        assert rows
        for row in rows:
            assert row.endswith(r"\\"), f"row does not end with \\\\: {row}"
            assert len(re.findall(r"(?<!\\)&", row)) + 1 == columns, f"{columns} columns expected: {row}"
    return len(tabulars)


# ---- tests ------------------------------------------------------------------------------------------


def test_markdown_report_card_is_a_valid_table_with_every_indicator(static_rows):
    text = to_markdown(static_rows, SETUP)
    header, *body = markdown_table(text)
    assert header[:3] == ["Indicator", "Unit", "Source"] and header[3:] == MODELS
    labels = [row[0] for row in body]
    for wanted in ("Parameters", "Active parameters", "FLOPs", "MACs", "Training FLOPs", "Memory traffic"):
        assert any(label.startswith(wanted) for label in labels), wanted
    assert any(label.startswith("Latency") for label in labels)
    by_label = {row[0]: row for row in body}
    assert by_label["Parameters"][1:3] == ["params", "counted"]
    assert by_label["Latency, median [p10–p90]"][2] == "not measured"
    assert "batch 1 × 32 tokens" in by_label["Input"] and "batch 1 × 224×224 px" in by_label["Input"]
    for item in ("Hardware", "dtype: float32", "torch 2.13.0", "random", "1 multiply-add = 2 FLOPs"):
        assert item in text


def test_latex_report_card_is_valid_tabular_syntax(static_rows):
    text = to_latex(static_rows, SETUP)
    assert check_latex(text) == 2
    assert r"\begin{tabular}{lllrrr}" in text
    assert "google/vit-base-patch16-224" in text


def test_measured_rows_show_medians_with_spread_and_say_measured(static_rows):
    rows = [measured_row(r) for r in static_rows]
    header, *body = markdown_table(to_markdown(rows, SETUP))
    latency = next(row for row in body if row[0].startswith("Latency"))
    assert latency[2] == "measured" and latency[3] == "12.5 ms [12 ms–14.2 ms]"
    assert next(row for row in body if row[0] == "Throughput")[2] == "measured"
    assert check_latex(to_latex(rows, SETUP)) == 2


def test_mixed_sources_are_marked_per_cell(static_rows):
    measured = measured_row(static_rows[0])
    estimated = Row(static_rows[1].result, Estimate(latency_ms=0.85, chip="a100-80gb"))
    _, *body = markdown_table(to_markdown([measured, estimated], SETUP))
    latency = next(row for row in body if row[0].startswith("Latency"))
    assert latency[2] == "per cell"
    assert latency[3].endswith("(measured)") and latency[4] == "850 µs on a100-80gb (estimated)"
    text = to_latex([measured, estimated], SETUP)
    assert r"\textmu{}" in text and check_latex(text) == 2


def test_failed_model_gets_a_cell_and_a_note(static_rows):
    failed = Row(Result.failure("broken_model", {}, "could not build: 50% of #layers & more"))
    md = to_markdown([static_rows[0], failed], SETUP)
    _, *body = markdown_table(md)
    assert next(row for row in body if row[0] == "Parameters")[4] == "failed"
    assert "broken_model: failed" in md
    assert check_latex(to_latex([static_rows[0], failed], SETUP)) == 2


def test_latex_escape_covers_the_specials():
    assert latex_escape("a_b & 50% #1 $x {y} ~ ^") == (
        r"a\_b \& 50\% \#1 \$x \{y\} \textasciitilde{} \textasciicircum{}"
    )


def test_make_setup_names_this_machine_and_software(static_rows):
    setup = make_setup([row.result for row in static_rows])
    assert setup["hardware"] == "none (static counts)"
    assert setup["software"]["torch"] and setup["software"]["transformers"] and setup["date"]


def test_cli_report_prints_markdown_and_latex(capsys):
    assert _cli(["report", "electra-small-discriminator", "--seq-len", "16"]) == 0
    markdown_table(capsys.readouterr().out)
    assert _cli(["report", "electra-small-discriminator", "--seq-len", "16", "--format", "latex"]) == 0
    assert check_latex(capsys.readouterr().out) == 2
    assert _cli(["report", "no-such-model-xyz", "--seq-len", "16"]) == 1
    assert "failed" in capsys.readouterr().out


def quality_row(static: Row, model: str, params: float, latency: float | None, quality: list[dict]) -> Row:
    """A result with made-up costs and quality figures (only the frontier rule is tested)."""
    data = {**static.result.to_dict(), "model": model, "label": model, "params": params, "quality": quality}
    if latency is not None:
        data |= {"measured": True, "latency_ms": {"median": latency, "p10": latency, "p90": latency, "n": 5}}
    return Row(Result.from_dict(data))


def figure(benchmark: str, value: float, unit: str = "") -> dict:
    return {"benchmark": benchmark, "value": value, "unit": unit, "source": "given by the user"}


def test_frontier_table_names_the_models_on_each_frontier(static_rows):
    base = static_rows[0]
    rows = [
        quality_row(base, "a", 1e6, 10.0, [figure("score", 70)]),
        quality_row(base, "b", 2e6, 1.0, [figure("score", 80)]),
        quality_row(base, "c", 3e6, None, [figure("score", 75)]),
        quality_row(base, "d", 4e6, 2.0, []),  # no figure: not on any frontier, not listed
    ]
    rows[2] = Row(rows[2].result, Estimate(latency_ms=5.0, chip="t4"))
    (title, body), *others = frontier_table(rows)
    assert not others and title.startswith("score (given by the user), no unit, higher is better")
    by_indicator = {line[0]: line[1:] for line in body}
    assert by_indicator["Parameters"] == ["counted", "a, b", "—"]  # c is dominated by b (costlier, worse)
    assert by_indicator["Latency"] == ["per model", "b", "—"]  # b is fastest and best: alone on the frontier
    assert "Memory traffic" in by_indicator and "Peak memory" not in by_indicator  # no model has a peak memory
    text = to_markdown(rows, SETUP)
    assert "**Pareto frontier of quality against cost: score (given by the user)" in text
    assert "| Parameters | counted | a, b | — |" in text
    assert check_latex(to_latex(rows, SETUP)) == 3


def test_frontier_table_follows_a_lower_is_better_benchmark_and_needs_two_models(static_rows):
    base = static_rows[0]
    ppl = "lambada-zero-shot-ppl"
    rows = [
        quality_row(base, "small", 1e6, None, [figure(ppl, 30.0, "perplexity"), figure("alone", 1.0)]),
        quality_row(base, "big", 2e6, None, [figure(ppl, 20.0, "perplexity")]),
        quality_row(base, "worse", 3e6, None, [figure(ppl, 40.0, "perplexity")]),
    ]
    (title, body), *others = frontier_table(rows)
    assert not others  # "alone" has one model: no frontier to draw
    assert title.endswith("perplexity, lower is better")
    assert body[0] == ["Parameters", "counted", "small, big", "—"]  # worse: costlier and higher perplexity

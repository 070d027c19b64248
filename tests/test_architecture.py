"""The layout rules of ARCHITECTURE.md, read from the source with ``ast`` (``benchmarks/import_graph.py``):
no import cycles, no upward imports, few top-level modules, streamlit only in the UI, short pages, and a reason
on every function-level import. The checker itself is tested first, on a small hand-built package."""

from __future__ import annotations

from pathlib import Path

from benchmarks.import_graph import (
    MAX_TOP_LEVEL_MODULES,
    cycles,
    import_graph,
    long_pages,
    misplaced_streamlit,
    top_level_modules,
    unexplained_lazy_imports,
    unlayered,
    upward_imports,
)

ROOT = Path(__file__).resolve().parent.parent
GRAPH = import_graph(ROOT / "efficiency")


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "efficiency"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_checker_finds_cycles_upward_and_unexplained_lazy_imports(tmp_path):
    root = _package(
        tmp_path,
        {
            "specs.py": "from efficiency.models import loading\n",  # layer 0 -> layer 1: upward
            "models/__init__.py": "",
            "models/loading.py": (
                "from . import inputs\n"  # relative, resolved to efficiency.models.inputs
                "def build():\n"
                "    from efficiency.counters import static  # lazy: imports torch\n"
                "    # lazy: the same reason, on the line above\n"
                "    from efficiency.counters.static import profile_static\n"
                "    from efficiency.specs import ModelSpec\n"
            ),
            "models/inputs.py": "import streamlit as st\nfrom efficiency.models.loading import build\n",
            "counters/__init__.py": "",
            "counters/static.py": "from efficiency.specs import ModelSpec\n",
        },
    )
    graph = import_graph(root)
    assert cycles(graph) == [
        ["efficiency.counters.static", "efficiency.models.inputs", "efficiency.models.loading", "efficiency.specs"]
    ]
    upward = {(edge.source, edge.target) for edge in upward_imports(graph)}
    assert upward == {
        ("efficiency.specs", "efficiency.models.loading"),
        ("efficiency.models.loading", "efficiency.counters.static"),
    }
    unexplained = [(edge.source, edge.target, edge.line) for edge in unexplained_lazy_imports(graph)]
    assert unexplained == [("efficiency.models.loading", "efficiency.specs", 6)]
    assert [edge.source for edge in misplaced_streamlit(graph)] == ["efficiency.models.inputs"]
    assert unlayered(graph) == []


def test_the_checker_places_every_module_in_a_layer():
    assert unlayered(GRAPH) == [], "give a new top-level module or subpackage a layer in LAYERS"


def test_few_top_level_modules():
    assert len(top_level_modules(ROOT / "efficiency")) <= MAX_TOP_LEVEL_MODULES


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def test_no_module_imports_a_higher_layer():
    assert [str(edge) for edge in upward_imports(GRAPH)] == []


def test_streamlit_is_imported_only_by_the_ui():
    assert [str(edge) for edge in misplaced_streamlit(GRAPH)] == []


def test_every_page_is_short():
    assert long_pages(ROOT) == []


def test_every_function_level_import_says_why():
    assert [str(edge) for edge in unexplained_lazy_imports(GRAPH)] == []

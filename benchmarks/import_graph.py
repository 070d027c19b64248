"""The import graph of ``efficiency/``, read with ``ast`` (nothing is imported), and the layout rules it must keep.

Prints, each with its offenders: the modules at the top level of ``efficiency/`` (at most 8), import cycles among
``efficiency`` modules (strongly connected components of more than one module, module-level and function-level
imports alike), upward imports (a module importing a module of a higher layer, by ``LAYERS``), streamlit
imported in ``efficiency/`` outside ``efficiency/ui/``, page files over 150 lines, and function-level imports of
``efficiency`` modules without a ``# lazy: <reason>`` comment. ``tests/test_architecture.py`` asserts the same
numbers. See ARCHITECTURE.md for the layers.

Run: .venv/bin/python benchmarks/import_graph.py [ROOT]   (exit status 1 when any rule is broken)
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "efficiency"
MAX_TOP_LEVEL_MODULES = 8
MAX_PAGE_LINES = 150
LAZY_MARK = "# lazy:"
STREAMLIT_ALLOWED = ("efficiency.ui",)  # besides pages/ and app.py, outside the package
# Lowest first; a module may import its own layer or lower. Keys are a top-level module or a subpackage.
LAYERS = {
    "efficiency": 0,
    "efficiency.specs": 0,
    "efficiency.units": 0,
    "efficiency.paths": 0,
    "efficiency.validation": 0,
    "efficiency.results": 0,
    "efficiency.models": 1,
    "efficiency.counters": 2,
    "efficiency.measure": 2,
    "efficiency.hardware": 2,
    "efficiency.store": 3,
    "efficiency.run": 4,
    "efficiency.analysis": 5,
    "efficiency.charts": 6,
    "efficiency.experiments": 7,
    "efficiency.cli": 8,
    "efficiency.ui": 8,
    "efficiency.__main__": 8,
}


@dataclass(frozen=True)
class Import:
    """One import statement's edge: ``source`` imports ``target`` at ``path:line``."""

    source: str
    target: str
    path: Path
    line: int
    function_level: bool
    lazy_reason: bool  # a ``# lazy:`` comment on the statement or on the line above it

    def __str__(self) -> str:
        where = "function-level" if self.function_level else "module-level"
        return f"{self.source} -> {self.target} ({self.path}:{self.line}, {where})"


@dataclass
class Graph:
    """The modules of the package (dotted name -> file) and every import among them."""

    root: Path
    modules: dict[str, Path]
    imports: list[Import] = field(default_factory=list)
    external: list[Import] = field(default_factory=list)  # imports of other packages (target: its top name)

    def edges(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {name: set() for name in self.modules}
        for edge in self.imports:
            if edge.target != edge.source:
                out[edge.source].add(edge.target)
        return out


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The module ``name`` loads: itself, or its longest prefix that is a module (``a.b.func`` -> ``a.b``)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _targets(node: ast.Import | ast.ImportFrom, source: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    """The dotted names an import statement loads (submodules named in ``from a import b`` included)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the importing module's package
        package = source.split(".") if is_package else source.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(filter(None, [*package, base]))
    names = []
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        names.append(candidate if candidate in modules else base)
    return names


class _Visitor(ast.NodeVisitor):
    def __init__(self, graph: Graph, source: str, path: Path, lines: list[str]) -> None:
        self.graph, self.source, self.path, self.lines = graph, source, path, lines
        self.depth = 0

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def _lazy_reason(self, node: ast.stmt) -> bool:
        above = self.lines[node.lineno - 2].strip() if node.lineno >= 2 else ""
        statement = self.lines[node.lineno - 1 : node.end_lineno or node.lineno]
        return above.startswith(LAZY_MARK) or any(LAZY_MARK in line for line in statement)

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        is_package = self.path.name == "__init__.py"
        names = _targets(node, self.source, is_package, self.graph.modules)
        loaded = {_resolve(name, self.graph.modules) if name.split(".")[0] == PACKAGE else name for name in names}
        for name in sorted(loaded):  # one edge per module a statement loads
            top = name.split(".")[0]
            edge = Import(
                source=self.source,
                target=name if top == PACKAGE else top,
                path=self.path.relative_to(self.graph.root.parent),
                line=node.lineno,
                function_level=self.depth > 0,
                lazy_reason=self._lazy_reason(node),
            )
            (self.graph.imports if top == PACKAGE else self.graph.external).append(edge)

    visit_Import = visit_ImportFrom = _import


def import_graph(root: Path) -> Graph:
    """The graph of the package folder ``root`` (``.../efficiency``)."""
    root = root.resolve()
    files = sorted(root.rglob("*.py"))
    graph = Graph(root=root, modules={module_name(path, root.parent): path for path in files})
    for name, path in graph.modules.items():
        text = path.read_text(encoding="utf-8")
        _Visitor(graph, name, path, text.splitlines()).visit(ast.parse(text, filename=str(path)))
    return graph


def layer_of(module: str) -> int | None:
    """The layer of a module by ``LAYERS`` (its top-level module or subpackage); None when it is not listed."""
    parts = module.split(".")
    return LAYERS.get(".".join(parts[:2]))


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted, in sorted order."""
    edges = graph.edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(edges[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def unlayered(graph: Graph) -> list[str]:
    """Modules that ``LAYERS`` does not place (a new top-level module or subpackage must be given a layer)."""
    return sorted(name for name in graph.modules if layer_of(name) is None)


def upward_imports(graph: Graph) -> list[Import]:
    """Imports of a module of a higher layer than the importer's."""
    return [
        edge
        for edge in graph.imports
        if None not in (layer_of(edge.source), layer_of(edge.target)) and layer_of(edge.target) > layer_of(edge.source)
    ]


def unexplained_lazy_imports(graph: Graph) -> list[Import]:
    """Function-level imports of ``efficiency`` modules without a ``# lazy:`` reason."""
    return [edge for edge in graph.imports if edge.function_level and not edge.lazy_reason]


def misplaced_streamlit(graph: Graph) -> list[Import]:
    """``streamlit`` imported in the package outside ``efficiency/ui/``."""
    return [
        edge
        for edge in graph.external
        if edge.target == "streamlit"
        and not any(edge.source == allowed or edge.source.startswith(allowed + ".") for allowed in STREAMLIT_ALLOWED)
    ]


def top_level_modules(root: Path) -> list[str]:
    """The ``.py`` files directly in the package folder (``__init__`` and ``__main__`` included)."""
    return sorted(path.name for path in root.glob("*.py"))


def long_pages(project: Path, limit: int = MAX_PAGE_LINES) -> list[str]:
    """Files in ``pages/`` over ``limit`` lines, each as ``pages/NAME.py: N lines``."""
    counted = (
        (path, len(path.read_text(encoding="utf-8").splitlines())) for path in sorted(project.glob("pages/*.py"))
    )
    return [f"pages/{path.name}: {lines} lines" for path, lines in counted if lines > limit]


def report(project: Path) -> int:
    """Print every count with its offenders; returns the number of rules broken."""
    root = project / PACKAGE
    graph = import_graph(root)
    checks: list[tuple[str, list, int]] = [
        (f"top-level modules in {PACKAGE}/ (at most {MAX_TOP_LEVEL_MODULES})", top_level_modules(root), 8),
        ("modules outside the layer table", unlayered(graph), 0),
        ("import cycles (strongly connected components > 1 module)", cycles(graph), 0),
        ("upward imports", upward_imports(graph), 0),
        (f"streamlit imports in {PACKAGE}/ outside {PACKAGE}/ui/", misplaced_streamlit(graph), 0),
        (f"page files over {MAX_PAGE_LINES} lines", long_pages(project), 0),
        (f"function-level imports of {PACKAGE} modules without '{LAZY_MARK}'", unexplained_lazy_imports(graph), 0),
    ]
    broken = 0
    print(f"{len(graph.modules)} modules, {len(graph.imports)} imports among them")
    for title, found, allowed in checks:
        print(f"{title}: {len(found)}")
        if len(found) > allowed:
            broken += 1
            for item in found:
                print(f"  {' <-> '.join(item) if isinstance(item, list) else item}")
    return broken


if __name__ == "__main__":
    project = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    sys.exit(1 if report(project) else 0)

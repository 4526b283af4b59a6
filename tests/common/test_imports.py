"""No import cycles among our modules, top-level or inside functions.

A function-level import that closes a circle works until someone moves it to the top (or
imports in another order), and it hides which module depends on which: the refresh child once
imported the PMDA glue, with its PCP bindings, only to reach a defaults function.  The graph is
read from the source (AST), so nothing is imported to test it; imports under ``if
TYPE_CHECKING:`` never run and do not count.
"""
from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("pmdas", "hpc_pcp", "dtn_transfer", "hpc_demo", "dtn_lab")   # product, demo, lab


def modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name → file, for every module of ``packages`` under ``root``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


class _Imports(ast.NodeVisitor):
    """Every import statement that can run: anywhere, but not under ``if TYPE_CHECKING``."""

    def __init__(self) -> None:
        self.found: list[ast.Import | ast.ImportFrom] = []

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.found.append(node)

    visit_ImportFrom = visit_Import

    def visit_If(self, node: ast.If) -> None:
        if "TYPE_CHECKING" not in ast.unparse(node.test):
            self.generic_visit(node)
            return
        for child in node.orelse:
            self.visit(child)


def _known(name: str, known: dict[str, Path]) -> str | None:
    """The module ``name`` names, or the closest known package above it."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def graph(known: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the modules of ``known`` it imports."""
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        visitor = _Imports()
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        for node in visitor.found:
            if isinstance(node, ast.Import):
                targets.update(_known(alias.name, known) for alias in node.names)
                continue
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            if node.level:
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            # a submodule if there is one, else the module itself
            targets.update(_known(f"{base}.{alias.name}", known) for alias in node.names)
        edges[name] = {t for t in targets if t is not None and t != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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
    return found


def test_no_import_cycles():
    edges = graph(modules(REPO, PACKAGES))
    assert "pmdas.common.start" in edges["pmdas.common.worker"]     # the graph is not empty
    assert cycles(edges) == []


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from .sub import b\n")
    (package / "sub" / "b.py").write_text("def late():\n    from ..a import x\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n    from pkg import a\n")
    (package / "d.py").write_text("import pkg.c\n")
    edges = graph(modules(tmp_path, ["pkg"]))
    assert edges["pkg.c"] == set() and edges["pkg.d"] == {"pkg.c"}
    assert cycles(edges) == [["pkg.a", "pkg.sub.b"]]


# -- layers: what the product may import ----------------------------------------------------------
PRODUCT = ("pmdas", "hpc_pcp", "dtn_transfer")
FORBIDDEN = {   # package → top-level packages it must never import (CONTRIBUTING.md)
    "pmdas": {"hpc_pcp", "dtn_transfer", "hpc_demo", "dtn_lab", "tests", "bench", "matplotlib"},
    "hpc_pcp": {"hpc_demo", "dtn_lab", "tests", "bench", "matplotlib"},
    "dtn_transfer": {"hpc_demo", "dtn_lab", "tests", "bench", "matplotlib", "pmdas", "hpc_pcp"},
}
# hpcdtn reads what dtn-transfer writes, with dtn-transfer's own parsers of those formats;
# dtn-transfer writes what a resume needs through the agents' one durable-write helper.
ALLOWED = {"pmdas.hpcdtn": ("dtn_transfer",), "dtn_transfer": ("pmdas.common.durable",)}


def absolute_imports(path: Path, module: str) -> set[str]:
    """Every absolute module name ``path`` imports (relative imports stay in its package)."""
    visitor = _Imports()
    visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    names = set()
    for node in visitor.found:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif node.level == 0 and node.module:
            names.add(node.module)
        else:
            names.add(module.split(".")[0])
    return names


def violations_of(name: str, imported: set[str]) -> list[str]:
    allowed = next((a for prefix, a in ALLOWED.items() if name == prefix or name.startswith(prefix + ".")),
                   ())
    return [f"{name} imports {i}" for i in sorted(imported)
            if i.split(".")[0] in FORBIDDEN[name.split(".")[0]]
            and not any(i == a or i.startswith(a + ".") for a in allowed)]


def test_the_product_imports_no_demo_lab_tests_or_plots():
    violations = []
    for name, path in modules(REPO, PRODUCT).items():
        violations += violations_of(name, absolute_imports(path, name))
    assert violations == []


def test_a_layer_violation_is_found(tmp_path):
    (tmp_path / "pmdas").mkdir()
    (tmp_path / "pmdas" / "__init__.py").write_text("")
    (tmp_path / "pmdas" / "x.py").write_text("def f():\n    from hpc_demo import node\n")
    names = absolute_imports(tmp_path / "pmdas" / "x.py", "pmdas.x")
    assert violations_of("pmdas.x", names) == ["pmdas.x imports hpc_demo"]
    assert violations_of("dtn_transfer.state", {"pmdas.common.durable"}) == []
    assert violations_of("dtn_transfer.state", {"pmdas.common.pmda"}) == [
        "dtn_transfer.state imports pmdas.common.pmda"]


def test_installing_the_product_without_the_lab_extra_pulls_no_matplotlib(tmp_path):
    """What pip would install for the product alone, resolved for real (nothing installed)."""
    import json
    import subprocess
    import sys

    def resolved(target: str) -> set[str]:
        report = tmp_path / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
                        "--disable-pip-version-check", "--report", str(report), target],
                       check=True, capture_output=True, timeout=300, cwd=REPO)
        return {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}

    product = resolved(".")
    assert "pcp-hpc" in product and "matplotlib" not in product, product
    assert "matplotlib" in resolved(".[lab]")

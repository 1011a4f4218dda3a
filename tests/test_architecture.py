"""The shape of the code (house rules, checked on the source): no import cycles, no private name
imported across modules, the library never imports its studies, and no module over ~500 lines."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rlbandit", "llm")
MAX_LINES = 520


def _modules(packages=PACKAGES) -> dict[str, Path]:
    out = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(path: Path):
    """(module, names) of every import, skipping bodies of ``__getattr__`` (PEP 562 lazy re-exports,
    which run after both modules are loaded and so cannot form an import-time cycle)."""
    tree = ast.parse(path.read_text())
    lazy = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
            for n in ast.walk(f)}
    for node in ast.walk(tree):
        if id(node) in lazy:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, tuple(alias.name for alias in node.names)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for module, names in _imports(path):
            # ``from package import submodule`` depends on the submodule, not on the package body.
            submodules = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules]
            targets = submodules if submodules and len(submodules) == len(names) else [module] + submodules
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def test_no_import_cycles():
    graph, state, cycles = _graph(), {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


@pytest.mark.parametrize("package", PACKAGES + ("benchmarks",))
def test_no_private_name_is_imported_across_modules(package):
    private = [f"{path.name}: from {module} import {name}" for path in sorted((ROOT / package).rglob("*.py"))
               for module, names in _imports(path) for name in names
               if name.startswith("_") and not name.startswith("__") and module.split(".")[0] in PACKAGES + ("benchmarks",)]
    assert private == []


def test_the_library_never_imports_the_studies():
    offenders = [f"{name} imports {module}" for name, path in _modules().items() for module, _ in _imports(path)
                 if module.split(".")[0] == "benchmarks"]
    assert offenders == []


@pytest.mark.parametrize("package", PACKAGES + ("benchmarks",))
def test_no_module_over_the_size_limit(package):
    long = {str(p.relative_to(ROOT)): n for p in sorted((ROOT / package).rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}

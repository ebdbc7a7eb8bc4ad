"""The package's shape: short functions, short modules, no import cycle inside ``mstt/``.

Read from the source with ``ast`` (nothing is imported), so these hold for every module,
including the ones no other test imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mstt"
MAX_FUNCTION_LINES = 80  # from the ``def`` line to the last line of the body, docstring included
MAX_MODULE_LINES = 400

# Known violations, to be fixed where they live and then removed from here; nothing may be added.
ALLOWED_LONG_FUNCTIONS: set[str] = set()
ALLOWED_LONG_MODULES: set[str] = set()


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def _functions(tree: ast.AST, prefix: str = "") -> list[tuple[str, ast.AST]]:
    """Every function and method, named ``Class.method`` (nested ones ``outer.inner``)."""
    found = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append((prefix + node.name, node))
            found += _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            found += _functions(node, f"{prefix}{node.name}.")
        else:
            found += _functions(node, prefix)
    return found


def test_no_function_is_longer_than_the_limit():
    long = {}
    for path in _modules().values():
        for name, node in _functions(ast.parse(path.read_text())):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                long[f"{_relative(path)}: {name}"] = lines
    assert set(long) - ALLOWED_LONG_FUNCTIONS == set(), f"functions over {MAX_FUNCTION_LINES} lines: {long}"
    fixed = ALLOWED_LONG_FUNCTIONS - set(long)
    assert not fixed, f"no longer too long, remove from ALLOWED_LONG_FUNCTIONS: {fixed}"


def test_no_module_is_longer_than_the_limit():
    long = {_relative(p): n for p in _modules().values() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert set(long) - ALLOWED_LONG_MODULES == set(), f"modules over {MAX_MODULE_LINES} lines: {long}"
    fixed = ALLOWED_LONG_MODULES - set(long)
    assert not fixed, f"no longer too long, remove from ALLOWED_LONG_MODULES: {fixed}"


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported.

    Left out: imports inside a function (the package imports there on purpose: to break a cycle,
    or to keep ``import mstt`` and the CLI free of torch) and under ``if TYPE_CHECKING:``.
    """
    found = []

    def visit(nodes: list[ast.AST]) -> None:
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                visit(node.orelse)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            else:
                visit(list(ast.iter_child_nodes(node)))

    visit(tree.body)
    return found


def _import_graph() -> dict[str, set[str]]:
    """Module -> the ``mstt`` modules it imports at module level.

    ``from mstt.pkg import name`` counts as importing ``mstt.pkg.name`` when that is a module,
    else ``mstt.pkg`` (its ``__init__``). A submodule importing its own package's ``__init__``
    implicitly (as every ``import mstt.pkg.mod`` does) is not an edge: Python runs the package
    first, which is the usual layout of a package re-exporting its modules.
    """
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in _module_level_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in modules else source)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def test_no_import_cycle_inside_the_package():
    graph = _import_graph()
    assert "mstt.report.write" in graph["mstt.report"]  # the graph sees re-exports of a package
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]

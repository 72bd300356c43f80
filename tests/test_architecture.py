"""The package's shape stays as docs/architecture.md draws it.

- No import circle between fiswatch modules, counting the imports inside functions too: a
  lazy import only hides a circle until the day someone moves it to the top (an AST walk,
  nothing is imported).
- Every module is in docs/architecture.md's map, so the map a newcomer reads stays true.
"""
import ast
import os
import re
from typing import Dict, List, Optional, Set

import fiswatch

PACKAGE = os.path.dirname(os.path.abspath(fiswatch.__file__))
ROOT = os.path.dirname(PACKAGE)
ARCHITECTURE = os.path.join(ROOT, "docs", "architecture.md")


def modules() -> Dict[str, str]:
    """Dotted module name -> file path, for every .py file of the package."""
    out = {}
    for folder, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                out[dotted[: -len(".__init__")] if dotted.endswith(".__init__") else dotted] = path
    return out


def _resolve(name: str, known: Set[str]) -> Optional[str]:
    """The longest known module `name` starts with ('fiswatch.ui.text.fit' -> 'fiswatch.ui.text')."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: str, known: Set[str]) -> Set[str]:
    """The fiswatch modules `module` imports anywhere in its file (top level, functions, TYPE_CHECKING)."""
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    is_package = path.endswith("__init__.py")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                anchor = parts if is_package else parts[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from fiswatch.lab import layout` imports the module fiswatch.lab.layout
            targets = [base + "." + alias.name for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            hit = _resolve(target, known)
            if hit is not None and hit != module:
                found.add(hit)
    return found


def import_graph() -> Dict[str, Set[str]]:
    found = modules()
    known = set(found)
    return {module: imports_of(module, path, known) for module, path in found.items()}


def find_circle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One import circle as its path (first module repeated at the end), or None.

    A package importing its own submodules (`fiswatch.x` -> `fiswatch.x.y`) is not an edge that
    can close a circle through the parent: Python imports the parent first in any case."""
    edges = {m: sorted(t for t in targets if not t.startswith(m + ".")) for m, targets in graph.items()}
    state: Dict[str, int] = {}  # 1 on the current path, 2 done
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                circle = visit(nxt)
                if circle:
                    return circle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            circle = visit(start)
            if circle:
                return circle
    return None


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # fiswatch.cli imports every command's module lazily, through importlib: not an edge (by design);
    # runner.py imports make_backend at the top, watch.py its command helpers inside functions
    assert "fiswatch.backends.registry" in graph["fiswatch.engine.runner"]
    lazy = {t for t in graph["fiswatch.commands.watch"]}
    assert "fiswatch.lab.exec_demo" in lazy  # `from fiswatch.lab.exec_demo import watch_hooks` in a function


def test_find_circle_reports_the_path():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set(), "p": {"p.x"}, "p.x": {"p"}}) is None


def test_no_import_circle_between_fiswatch_modules():
    circle = find_circle(import_graph())
    assert circle is None, "import circle (imports inside functions count): " + " -> ".join(circle or [])


def test_every_module_is_in_the_architecture_map():
    with open(ARCHITECTURE, encoding="utf-8") as fh:
        text = fh.read()
    named = set(re.findall(r"`(fiswatch/[\w/]+\.py)`", text))
    missing = sorted(os.path.relpath(path, ROOT).replace(os.sep, "/") for path in modules().values()
                     if os.path.relpath(path, ROOT).replace(os.sep, "/") not in named)
    assert not missing, "docs/architecture.md's map lacks: " + ", ".join(missing)
    gone = sorted(p for p in named if not os.path.exists(os.path.join(ROOT, p)))
    assert not gone, "docs/architecture.md names modules that no longer exist: " + ", ".join(gone)

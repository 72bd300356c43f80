"""No fiswatch module uses another one's private names (`_x`): an AST walk over the package.

A private name is a module's own business; reaching into it from elsewhere (`screen._wrapper`,
`probe._round`, `loop._loop`) wires modules together through doors that are not meant to
stay. Three ways in are caught:

- `from fiswatch.x import _name` in another module;
- `mod._name` where `mod` is a fiswatch module imported under any name;
- `obj._name` (obj not self/cls) where `_name` is defined (function, class, assignment,
  `self._name = ...`) only in other fiswatch modules, not in the one using it.
"""
import ast
import os
from typing import Dict, List, Set

import fiswatch

PACKAGE = os.path.dirname(os.path.abspath(fiswatch.__file__))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_sources() -> Dict[str, str]:
    out = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
                module = rel[: -len(".__init__")] if rel.endswith(".__init__") else rel
                with open(path, encoding="utf-8") as fh:
                    out[module] = fh.read()
    return out


def _defined(tree: ast.AST) -> Set[str]:
    """Private names a module defines: functions, classes, assignments, self/cls attributes."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {n for n in names if _private(n)}


def private_uses(sources: Dict[str, str]) -> List[str]:
    """'module:line uses other._name' for every use of another module's private name."""
    trees = {module: ast.parse(text) for module, text in sources.items()}
    defined = {module: _defined(tree) for module, tree in trees.items()}
    packages = _packages(sources)
    problems = []
    for module, tree in sorted(trees.items()):
        package = module if module in packages else module.rsplit(".", 1)[0]
        aliases = {}  # local name -> fiswatch module
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in trees:
                        aliases[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                if base not in trees and not base.startswith("fiswatch"):
                    continue
                for alias in node.names:
                    full = base + "." + alias.name
                    if full in trees:
                        aliases[alias.asname or alias.name] = full
                    elif _private(alias.name) and base != module:
                        problems.append("%s:%d imports %s from %s" % (module, node.lineno, alias.name, base))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in aliases:
                if aliases[owner.id] != module:
                    problems.append("%s:%d uses %s.%s" % (module, node.lineno, aliases[owner.id], node.attr))
                continue
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if node.attr in defined[module]:
                continue
            owners = sorted(m for m, names in defined.items() if node.attr in names)
            if owners:
                problems.append("%s:%d uses %s.%s (private to %s)"
                                % (module, node.lineno, ast.unparse(owner), node.attr, ", ".join(owners)))
    return problems


def _packages(sources: Dict[str, str]) -> Set[str]:
    """Modules that are packages (some other module's name starts with theirs and a dot)."""
    return {m for m in sources if any(other.startswith(m + ".") for other in sources)}


def test_no_module_uses_another_modules_private_names():
    assert private_uses(_module_sources()) == []


def test_the_check_finds_each_way_in():
    sources = {
        "fiswatch": "",
        "fiswatch.ui": "",
        "fiswatch.ui.screen": "def _wrapper(curses, fn):\n    pass\n",
        "fiswatch.engine": "",
        "fiswatch.engine.probe": "class Probe:\n    def _round(self, conn):\n        pass\n",
        "fiswatch.aws": "",
        "fiswatch.aws.fleet_screen": ("from fiswatch.ui import screen\n"
                                      "from fiswatch.ui.screen import _wrapper\n"
                                      "def run(curses, probe, conn):\n"
                                      "    screen._wrapper(curses, None)\n"
                                      "    probe._round(conn)\n"
                                      "    self_owned = _Mine()\n"
                                      "class _Mine:\n"
                                      "    def __init__(self):\n"
                                      "        self._own = 1\n"
                                      "    def peek(self, other):\n"
                                      "        return other._own\n"),
    }
    found = private_uses(sources)
    assert [p.split(" ", 1)[0] for p in found] == ["fiswatch.aws.fleet_screen:2", "fiswatch.aws.fleet_screen:4",
                                                    "fiswatch.aws.fleet_screen:5"], found
    assert "_wrapper" in found[0] and "screen._wrapper" in found[1] and "probe._round" in found[2]

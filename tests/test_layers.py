"""The layers of ``aetherflow.core``, read from its source with :mod:`ast`.

1. No import cycle. Counted are the imports a module runs when it is imported: those
   at module level, including inside a module-level ``if``/``try``, but not under
   ``if TYPE_CHECKING:`` (never run) nor inside functions (run later, when every module
   is loaded: a lazy import is how a module reaches a heavy library or a sibling it
   must not load early). An import of a module's own package is not an edge: Python
   has that package in ``sys.modules`` already when the module runs.
2. Steps and drivers (``connectors/builtin``, ``connectors/families``, ``steps/builtin``)
   use only public names: no underscore module of another package (a package may keep
   private modules for itself), and no underscore name taken from any other module
   (what two modules share is public, and belongs in a public place). Here every
   import counts, lazy ones included.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import aetherflow.core

CORE = Path(aetherflow.core.__file__).parent
LAYERED = ("connectors.builtin", "connectors.families", "steps.builtin")


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # a module of the package
    names: tuple[str, ...]  # names taken from it (from X import a, b)
    line: int
    module_level: bool


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package at ``root``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join((package, *parts))] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt], module_level: bool):
    """``(statement, runs at import)`` for every statement, nested ones included."""
    for node in body:
        yield node, module_level
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _statements(node.body, False)
        elif isinstance(node, ast.If) and _is_type_checking(node):
            yield from _statements(node.body, False)
            yield from _statements(node.orelse, module_level)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None) or []
                yield from _statements([c for c in children if isinstance(c, ast.stmt | ast.ExceptHandler)], module_level)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """The imports of module ``name`` that reach a module of the same package."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node, module_level in _statements(tree.body, True):
        if isinstance(node, ast.ExceptHandler):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    found.append(Import(name, alias.name, (), node.lineno, module_level))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = tuple(alias.name for alias in node.names)
            if target in modules:
                found.append(Import(name, target, names, node.lineno, module_level))
            for alias in names:  # from package import submodule
                if f"{target}.{alias}" in modules:
                    found.append(Import(name, f"{target}.{alias}", (), node.lineno, module_level))
    return found


def all_imports(root: Path, package: str) -> list[Import]:
    modules = module_files(root, package)
    return [imp for name, path in modules.items() for imp in imports_of(name, path, modules)]


def import_cycles(imports: list[Import]) -> list[list[str]]:
    """Every cycle among import-time edges, each once, as the modules along it."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        own_package = imp.importer.startswith(imp.target + ".")
        if imp.module_level and not own_package and imp.target != imp.importer:
            graph.setdefault(imp.importer, set()).add(imp.target)
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    cycles.append([*cycle, nxt])
            elif state.get(nxt) is None:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if state.get(node) is None:
            visit(node)
    return cycles


def _private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def layer_violations(imports: list[Import], package: str, layered: tuple[str, ...]) -> list[str]:
    """Imports by steps and drivers of an underscore module of another package, or of
    an underscore name of another module."""
    prefixes = tuple(f"{package}.{layer}." for layer in layered)
    problems = []
    for imp in imports:
        if not imp.importer.startswith(prefixes) or imp.target == imp.importer:
            continue
        where = f"{imp.importer} line {imp.line}"
        importer_package = imp.importer.rsplit(".", 1)[0]
        own = imp.target == importer_package or imp.target.rsplit(".", 1)[0] == importer_package
        if not own and any(_private(part) for part in imp.target.split(".")):
            problems.append(f"{where}: imports private module {imp.target}")
        if imp.target == importer_package:
            continue  # from . import name: a module of its own package, checked above
        for name in imp.names:
            if _private(name):
                problems.append(f"{where}: imports private name {name} from {imp.target}")
    return problems


def test_core_has_no_import_cycle():
    cycles = import_cycles(all_imports(CORE, "aetherflow.core"))
    assert cycles == [], "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_steps_and_drivers_import_only_public_names_of_other_packages():
    problems = layer_violations(all_imports(CORE, "aetherflow.core"), "aetherflow.core", LAYERED)
    assert problems == [], "\n".join(problems)


def test_the_checks_catch_a_cycle_and_private_imports(tmp_path):
    """The two checks above fail on a tree built to break both rules."""
    root = tmp_path / "pkg"
    files = {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "import pkg.c\n",
        "c.py": "from .a import thing\n",
        "lazy.py": "def later():\n    from . import a\n",
        "typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import lazy\n",
        "steps/__init__.py": "",
        "steps/builtin/__init__.py": "",
        "steps/builtin/step.py": (
            "def run():\n    from ...drivers._engine import go\n\n"
            "from ...drivers.public import _helper\nfrom . import _own\nfrom ._own import _shared\n"
        ),
        "steps/builtin/_own.py": "_shared = 1\n",
        "drivers/__init__.py": "",
        "drivers/_engine.py": "",
        "drivers/public.py": "from . import _engine\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    imports = all_imports(root, "pkg")
    assert import_cycles(imports) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
    problems = layer_violations(imports, "pkg", ("steps.builtin",))
    assert problems == [
        "pkg.steps.builtin.step line 2: imports private module pkg.drivers._engine",
        "pkg.steps.builtin.step line 4: imports private name _helper from pkg.drivers.public",
        "pkg.steps.builtin.step line 6: imports private name _shared from pkg.steps.builtin._own",
    ]

"""The package stays small enough to hold in your head: short modules, short functions, few root modules.

Limits (issue 11): every module under src/costlake/ has fewer than 400 lines, every function or method at
most 60 (decorators excluded, docstring included), and the package root holds at most 6 modules besides
`__init__.py` and `__main__.py` (the rest belongs in a package named after what it is).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "costlake"
MAX_MODULE_LINES = 400  # a module must have fewer
MAX_FUNCTION_LINES = 60
MAX_ROOT_MODULES = 6
# "costlake/module.py:function" of a function allowed to be longer, each with the reason it cannot be split.
# Keep it empty: a long function is nearly always several steps that want names.
LONG_FUNCTIONS: dict[str, str] = {}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def test_the_package_is_where_the_test_looks() -> None:
    assert (PACKAGE / "__init__.py").is_file() and len(_modules()) > 20


def test_every_module_has_fewer_than_400_lines() -> None:
    long = {_name(p): n for p in _modules() if (n := len(p.read_text().splitlines())) >= MAX_MODULE_LINES}
    assert long == {}, f"modules of {MAX_MODULE_LINES} lines or more (split them by what they are): {long}"


def _function_lengths() -> dict[str, int]:
    """Lines of every function and method, by "costlake/module.py:name" (nested ones included)."""
    lengths = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                key = f"{_name(path)}:{node.name}"
                lengths[key] = max(lengths.get(key, 0), (node.end_lineno or node.lineno) - node.lineno + 1)
    return lengths


def test_every_function_has_at_most_60_lines() -> None:
    long = {
        k: n for k, n in _function_lengths().items() if n > MAX_FUNCTION_LINES and k not in LONG_FUNCTIONS
    }
    assert long == {}, f"functions over {MAX_FUNCTION_LINES} lines (split them into named steps): {long}"


def test_allowed_long_functions_are_still_long() -> None:
    """An allow-list entry whose function was split (or removed) must go, so the list only shrinks."""
    long = {k for k, n in _function_lengths().items() if n > MAX_FUNCTION_LINES}
    assert set(LONG_FUNCTIONS) <= long, (
        f"no longer long, remove from LONG_FUNCTIONS: {set(LONG_FUNCTIONS) - long}"
    )


def test_the_package_root_has_at_most_6_modules() -> None:
    root = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(root) <= MAX_ROOT_MODULES, f"{len(root)} modules in src/costlake/: {root}"


def test_every_test_module_has_a_name_of_its_own() -> None:
    """Test modules are imported by their file name (the test folders are not packages): two of the
    same name in different folders fail collection, which a run of one folder does not show."""
    tests = Path(__file__).resolve().parent
    names: dict[str, list[str]] = {}
    for path in sorted(tests.rglob("test_*.py")):
        names.setdefault(path.name, []).append(path.relative_to(tests).as_posix())
    assert {name: paths for name, paths in names.items() if len(paths) > 1} == {}

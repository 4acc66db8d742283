"""Data flows one way, cli -> pipelines -> featcache, and the library never imports its testing kit.

``featcache.cli`` and ``featcache.pipelines`` exist only after installation (setuptools maps the
top-level ``cli/`` and ``pipelines/`` folders into the namespace), so static tools cannot follow
these imports. This test parses every module and checks every import statement, including the
ones inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"featcache": "featcache", "cli": "featcache.cli", "pipelines": "featcache.pipelines"}


def _modules():
    """(file, dotted module name, layer) of every module of the three packages."""
    for folder, prefix in PACKAGES.items():
        for file in sorted((ROOT / folder).rglob("*.py")):
            parts = list(file.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield file, ".".join([prefix, *parts]), folder


def _imports(file: Path, module: str):
    """Absolute names imported by ``file`` (relative imports resolved), with line numbers."""
    tree = ast.parse(file.read_text(), filename=str(file))
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            yield base, node.lineno
            for alias in node.names:  # `from featcache import cli` names a module too
                yield f"{base}.{alias.name}", node.lineno


def _under(name: str, *roots: str) -> bool:
    return any(name == r or name.startswith(r + ".") for r in roots)


def test_every_module_parses_and_imports_flow_one_way():
    found = list(_modules())
    assert len(found) > 80
    broken = []
    for file, module, layer in found:
        where = file.relative_to(ROOT)
        for name, line in _imports(file, module):
            if _under(name, "cli", "pipelines"):
                broken.append(f"{where}:{line}: bare `{name}` (use featcache.{name})")
            # the test kit sits above the stack like the tests: its fault driver
            # (featcache.testing.faults) runs the real CLI with one function patched
            driver = _under(module, "featcache.testing") and _under(name, "featcache.cli")
            if (
                layer == "featcache"
                and not driver
                and _under(name, "featcache.cli", "featcache.pipelines", "click")
            ):
                broken.append(f"{where}:{line}: the library imports {name}")
            if layer == "pipelines" and _under(name, "featcache.cli", "click"):
                broken.append(f"{where}:{line}: a pipeline imports {name}")
            in_testing = _under(module, "featcache.testing")
            if layer != "cli" and not in_testing and _under(name, "featcache.testing"):
                broken.append(f"{where}:{line}: imports the test kit {name}")
    assert broken == []


def test_the_checker_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f():\n    from featcache.pipelines.train import train\n    from . import x\n"
    )
    names = dict(_imports(bad, "featcache.store.bad"))
    assert "featcache.pipelines.train" in names and "featcache.store.x" in names

"""The import boundary: `queries` and `lake` load without streamlit; `app` never imports the
database driver or the Kafka client (it goes through `queries` and `ingest`)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_APP = {"duckdb", "kafka"}

IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
names = []
for package in ("lake", "queries"):
    root = importlib.import_module(package)
    names.append(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        importlib.import_module(info.name)
        names.append(info.name)
print(" ".join(names))
assert "streamlit" not in sys.modules, sorted(m for m in sys.modules if m.startswith("streamlit"))
"""


def test_queries_and_lake_import_without_streamlit() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    imported = done.stdout.split()
    assert {"lake.views", "lake.tables", "queries.health"} <= set(imported)


def _imported(path: Path) -> set[str]:
    """Top-level names of every module `path` imports (relative imports stay in the package)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


APP_MODULES = sorted((ROOT / "app").rglob("*.py"))


@pytest.mark.parametrize("path", APP_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_app_imports_no_driver_nor_kafka(path: Path) -> None:
    assert not _imported(path) & FORBIDDEN_IN_APP


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import duckdb", {"duckdb"}),
        ("import kafka.admin as a", {"kafka"}),
        ("from kafka import KafkaConsumer", {"kafka"}),
        ("from duckdb.sqltypes import VARCHAR", {"duckdb"}),
        ("def f():\n    import duckdb", {"duckdb"}),
        ("from . import kafka", set()),
        ("from queries import health", set()),
    ],
)
def test_the_import_check_sees_every_form(tmp_path: Path, source: str, found: set[str]) -> None:
    module = tmp_path / "m.py"
    module.write_text(source + "\n")
    assert _imported(module) & FORBIDDEN_IN_APP == found

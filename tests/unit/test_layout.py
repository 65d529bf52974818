"""Imports follow the data: streamer (capture, wire) <- models (perception, node, fusion)
<- dashboard; wellmon/ (the command line, benchmarks, harnesses) may import all of them, and
they import nothing of it but its config."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAY_IMPORT = {
    "streamer": {"streamer"},
    "models": {"streamer", "models"},
    "dashboard": {"streamer", "models", "dashboard"},
}
SHARED = {"wellmon.config"}  # the one module of wellmon/ the three layers read


def imported(path: Path) -> set[str]:
    """Every wellmon module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "wellmon":  # from wellmon import metrics
                found.update(f"wellmon.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("wellmon.")}


def test_no_layer_imports_against_the_data() -> None:
    wrong = []
    for layer, allowed in MAY_IMPORT.items():
        for path in sorted((ROOT / layer).rglob("*.py")):
            for name in imported(path):
                parts = name.split(".")
                target = parts[1] if len(parts) > 1 else ""
                if name not in SHARED and target not in allowed:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_every_package_is_installed_with_the_wheel() -> None:
    """A sub-package missing from setup.cfg works in the editable checkout and is absent
    from an installed wheel (wellmon.dashboard.report once was)."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    prefix = {"wellmon": "wellmon", "models": "wellmon.models", "streamer": "wellmon.streamer",
              "dashboard": "wellmon.dashboard"}
    found = set()
    for top, name in prefix.items():
        for init in (ROOT / top).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / top).parts
            found.add(".".join((name, *parts)))
    assert found == listed, (found - listed, listed - found)

"""A third-party strategy package found through the ``ponder.strategies`` entry point group.

The example package in ``ponder_plugin_example/`` is installed the way pip
installs it editable, but into a private directory: a ``*.dist-info`` built
from the package's own ``pyproject.toml`` (name, version, entry points) plus
its ``src`` directory, both put on ``sys.path``. That works offline, takes no
time, and never touches the shared environment other test runs use; teardown
takes both off ``sys.path`` again.
"""

from __future__ import annotations

import importlib
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder import Engine
from ponder.backends.scripted import ScriptedBackend
from ponder.strategies.registry import ENTRY_POINT_GROUP, Registry

PLUGIN = Path(__file__).parent / "ponder_plugin_example"


def install(site: Path) -> str:
    """Write the plugin's dist-info into ``site``; returns the distribution name."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = [f"[{group}]" + "".join(f"\n{k} = {v}" for k, v in eps.items())
             for group, eps in project["entry-points"].items()]
    (dist_info / "entry_points.txt").write_text("\n\n".join(lines) + "\n")
    return str(name)


@pytest.fixture
def installed_plugin(tmp_path: Path) -> Iterator[str]:
    site = tmp_path / "site-packages"
    name = install(site)
    paths = [str(site), str(PLUGIN / "src")]
    sys.path[:0] = paths
    importlib.invalidate_caches()
    try:
        yield name
    finally:
        for path in paths:
            sys.path.remove(path)
        sys.modules.pop("ponder_plugin_example", None)
        importlib.invalidate_caches()


def test_the_registry_finds_and_runs_an_installed_plugin(installed_plugin: str) -> None:
    registry = Registry.from_entry_points()
    info = registry.get("shout")
    assert info.source == installed_plugin == "ponder-plugin-example"
    assert info.cls.__module__ == "ponder_plugin_example"
    assert registry.get("cot").source == "ponder"
    backend = ScriptedBackend(["the answer is 12"])
    answer = Engine(backend, registry).ask("q", strategy="shout", params={"exclamations": "2"})
    assert answer.text == "THE ANSWER IS 12!!" and answer.answer == "12"
    assert [e.strategy for e in answer.ledger.entries] == ["shout"]
    # a plugin composes like a built-in
    answer = Engine(ScriptedBackend(["a", "Answer: 3"]), registry).ask(
        "q", strategy="shout>cot")
    assert answer.answer == "3" and answer.strategy == "shout>cot"


def test_the_plugin_is_gone_after_teardown() -> None:
    from importlib.metadata import entry_points

    assert "shout" not in {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert "shout" not in Registry.from_entry_points()

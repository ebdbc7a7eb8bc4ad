"""Shared fixtures: an isolated registry and on-disk fake plugin distributions."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from mstt.plugins import reset_registry


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch, tmp_path):
    """Each test gets its own registry, only the plugins of this repo, and a private cache."""
    monkeypatch.setenv("MSTT_CACHE", str(tmp_path / "mstt-cache"))
    reset_registry()
    yield
    reset_registry()


@pytest.fixture
def make_plugin(tmp_path, monkeypatch):
    """Write an installed-looking distribution with one entry point of group ``mstt``."""

    def make(dist: str, module: str, source: str, version: str = "1.0") -> Path:
        root = tmp_path / "site"
        root.mkdir(exist_ok=True)
        (root / f"{module}.py").write_text(textwrap.dedent(source))
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[mstt]\n{module} = {module}\n")
        monkeypatch.syspath_prepend(str(root))
        # A module of the same name from an earlier test must not be reused.
        monkeypatch.delitem(sys.modules, module, raising=False)
        importlib.invalidate_caches()
        monkeypatch.setenv("MSTT_LOAD_PLUGINS", ",".join(filter(None, [*_loaded, dist])))
        _loaded.append(dist)
        _modules.append(module)
        return root

    _loaded: list[str] = []
    _modules: list[str] = []
    yield make
    for name in _modules:
        sys.modules.pop(name, None)

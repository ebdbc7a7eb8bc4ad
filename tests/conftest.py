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


# ------------------------------------------------------------ bundled models


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory) -> Path:
    """A tiny Cerberus model (piano, guitar; 8 kHz) trained 2 steps, exported by ``mstt export --half --bundle default``.

    Returns the folder holding ``default.pt`` and ``models.json``; tests copy it before changing it.
    """
    from mstt.cli import main
    from mstt.train import train
    from tests.train.test_loop import ToneDataset, make_model, tiny_config

    base = tmp_path_factory.mktemp("bundled")
    config = tiny_config("trainer.max_steps=2", "trainer.validate_every=2")
    train(config, make_model(config), ToneDataset(4, seed=1), ToneDataset(2, seed=2), base / "run", progress=False)
    folder = base / "models"
    code = main(["export", "--half", str(base / "run/checkpoints/last.pt"), str(folder / "default.pt"),
                 "--bundle", "default", "--description", "tiny test model"])
    assert code == 0
    return folder


@pytest.fixture
def bundled(tiny_export, tmp_path, monkeypatch) -> Path:
    """A copy of :func:`tiny_export` registered as mstt's own bundled models folder; returns that folder."""
    import shutil

    import mstt.models

    folder = tmp_path / "models"
    shutil.copytree(tiny_export, folder)
    monkeypatch.setattr(mstt.models, "FOLDER", folder)
    reset_registry()
    return folder


@pytest.fixture
def no_bundled(tmp_path, monkeypatch) -> Path:
    """mstt's bundled models folder replaced by an empty one (as before a model ships)."""
    import mstt.models

    folder = tmp_path / "no-models"
    folder.mkdir()
    monkeypatch.setattr(mstt.models, "FOLDER", folder)
    reset_registry()
    return folder


@pytest.fixture
def full_disk_on_write_text(monkeypatch):
    """``Path.write_text`` writes a few characters, then fails as on a full disk (ENOSPC)."""
    import errno

    real = Path.write_text

    def full(self, text, *args, **kwargs):
        real(self, text[:5])  # part of it, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)

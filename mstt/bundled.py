"""Models addressed by name: the ``models`` registry kind, the manifest, checksums, name-or-path resolution.

A folder of bundled models (``mstt/models/`` in this package, or a plugin's own) holds the model
files and a manifest, ``models.json``::

    {"format": "mstt-models", "format_version": 1,
     "models": {"default": {"file": "default.pt", "sha256": "<64 hex>", "bytes": 12345678,
                            "description": "...", "sources": ["piano", ...], "recipe": "release_set5",
                            "step": 20000, "half": true, "mstt_version": "0.1.0"}}}

``mstt export CHECKPOINT DIR/NAME.pt --bundle NAME`` writes the file and its entry
(:func:`add_to_manifest`); :func:`register_manifest` registers a folder's entries through
``mstt_register_models`` (the built-in plugin :mod:`mstt.models` does so for ``mstt/models/``).
Loading a model by name verifies its sha256 (:func:`bundled_model`): a file that changed after
export means a damaged installation, and the one-line error says how to reinstall.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Callable

from mstt.errors import MsttError, RegistryError
from mstt.fileio import write_text_atomic

MANIFEST = "models.json"
MANIFEST_FORMAT = "mstt-models"
MANIFEST_VERSION = 1
DEFAULT = "default"  # the model `mstt separate AUDIO` and `mstt.load()` use
MODEL_SUFFIXES = (".pt", ".pth", ".ckpt")  # a path with one of these names a model file, never a recording
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file as 64 lower-case hex digits, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: str | Path) -> dict[str, dict[str, Any]]:
    """``{name: entry}`` of ``folder/models.json`` (empty when there is none); a damaged one is a RegistryError."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    damaged = f"{path}: is damaged (%s); restore it (git checkout, or reinstall the package that holds it)"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RegistryError(damaged % f"not readable JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or not isinstance(data.get("models"), dict):
        raise RegistryError(damaged % f"no format '{MANIFEST_FORMAT}' with a 'models' mapping")
    version = data.get("format_version")
    if not isinstance(version, int) or version > MANIFEST_VERSION:
        raise RegistryError(f"{path}: manifest format_version {version} is newer than this mstt reads ({MANIFEST_VERSION}); upgrade mstt")
    for name, entry in data["models"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not entry["file"]:
            raise RegistryError(damaged % f"model '{name}' has no 'file'")
    return data["models"]


def register_manifest(register: Callable[..., None], folder: str | Path) -> None:
    """Register every model of ``folder/models.json`` (inside ``mstt_register_models``)."""
    folder = Path(folder)
    for name, entry in read_manifest(folder).items():
        register(name, folder / entry["file"], description=str(entry.get("description") or ""),
                 sha256=entry.get("sha256"), sources=entry.get("sources"), recipe=entry.get("recipe"))


def manifest_entry(file: Path, data: dict[str, Any], description: str | None) -> dict[str, Any]:
    """The manifest entry of an exported ``file`` made from checkpoint ``data`` (its recipe, step, version)."""
    recipe = data.get("recipe") or {}
    sources = list((recipe.get("data") or {}).get("sources") or [])
    step = int(data.get("step", 0) or 0)
    name = str(recipe.get("name") or "")
    return {
        "file": file.name,
        "sha256": file_sha256(file),
        "bytes": file.stat().st_size,
        "description": description or f"{name} ({', '.join(sources)}), step {step}",
        "sources": sources,
        "recipe": name,
        "step": step,
        "half": bool(data.get("half", False)),
        "mstt_version": str(data.get("mstt_version", "")),
    }


def check_name(name: str, where: str = "--bundle") -> None:
    """Refuse a model name that the registry would refuse."""
    if not _NAME.match(name):
        raise MsttError(f"{where} {name}: model names are lower-case [a-z][a-z0-9_]*, e.g. default or pop_small")


def add_to_manifest(file: str | Path, name: str, data: dict[str, Any], description: str | None = None) -> tuple[Path, list[str]]:
    """Add (or replace) model ``name`` for ``file`` in the manifest beside it -> (manifest path, notes)."""
    file = Path(file)
    check_name(name)
    path = file.parent / MANIFEST
    try:
        models = read_manifest(file.parent)
    except RegistryError as exc:
        raise MsttError(f"{exc}; or delete it to start a new one") from None
    notes = []
    old = models.get(name)
    if old is not None and old["file"] != file.name:
        still = any(e["file"] == old["file"] for n, e in models.items() if n != name)
        if not still and (file.parent / old["file"]).exists():
            notes.append(f"{file.parent / old['file']} is no longer listed; delete it unless you keep it for another use")
    models[name] = manifest_entry(file, data, description)
    text = json.dumps({"format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION, "models": models}, indent=2) + "\n"
    write_text_atomic(path, text)
    return path, notes


# ------------------------------------------------------------ lookup


def reinstall_hint(plugin: str) -> str:
    """How to repair the distribution that registered a model."""
    from mstt.plugins import BUILTIN

    if plugin == BUILTIN:
        return "reinstall mstt (pip install --force-reinstall mstt; in a git checkout: git checkout -- mstt/models, or re-clone)"
    return f"reinstall {plugin} (pip install --force-reinstall {plugin})"


def bundled_model(name: str) -> Path:
    """The verified file of registered model ``name``; a missing or changed file is one line saying to reinstall."""
    from mstt.plugins import get_registry

    component = get_registry().get("models", name)
    path: Path = component.factory
    hint = reinstall_hint(component.plugin)
    if not path.is_file():
        raise MsttError(f"model '{name}': its file {path} is missing: the installation is damaged; {hint}")
    if file_sha256(path) != component.info["sha256"]:
        raise MsttError(f"model '{name}': {path} does not match the checksum recorded when it was exported: "
                        f"the installation is damaged; {hint}")
    return path


def model_names() -> list[str]:
    """The names of the registered models, sorted."""
    from mstt.plugins import get_registry

    return get_registry().names("models")


def looks_like_path(text: str) -> bool:
    """Whether a command-line word names a file rather than a model: a folder separator or a model suffix."""
    return "/" in text or os.sep in text or text.endswith(MODEL_SUFFIXES) or text.startswith(".")


def _known() -> str:
    names = model_names()
    return f"bundled models: {', '.join(names)} (mstt models lists them)" if names else "no bundled models are installed"


def resolve_model(spec: str | Path | None = None, where: str = "", how: str = "") -> tuple[Path, str | None]:
    """A bundled model's name (None: ``default``) or a checkpoint path -> (file, name or None).

    A ``str`` that names a registered model is that model, even when a file of that name exists
    (write ``./default`` for the file); a :class:`Path` is always a file. ``where`` prefixes the
    errors (e.g. ``--model``); ``how`` is the fix offered when no ``default`` is installed.
    """
    def said(what: str) -> str:  # "--model x: ...", "model.init=x: ...", or "x: ..."
        glue = "" if where.endswith("=") else " "
        return f"{where}{glue}{spec}: {what}" if where else f"{spec}: {what}"

    names = model_names()
    if spec is None or (isinstance(spec, str) and spec == DEFAULT):
        if DEFAULT in names:
            return bundled_model(DEFAULT), DEFAULT
        if spec is None or not Path(DEFAULT).is_file():  # else: a file named "default" here, read below
            how = how or "pass a checkpoint or exported model, e.g. runs/NAME/checkpoints/best.pt"
            text = f"no model named '{DEFAULT}' is installed ({_known()}); {how}"
            raise MsttError(said(text) if where and spec is not None else text)
    elif isinstance(spec, str) and spec in names:
        return bundled_model(spec), spec
    path = Path(spec)
    if path.is_file():
        return path, None
    if path.is_dir():
        raise MsttError(said(f"is a folder; pass a checkpoint file such as {path / 'checkpoints' / 'best.pt'}"))
    what = "no such checkpoint" if looks_like_path(str(spec)) else "no such checkpoint and no bundled model of that name"
    raise MsttError(said(f"{what}; {_known()}"))

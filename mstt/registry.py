"""One registry for every component kind: registration checks and lookup by name."""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from mstt.errors import RegistryError

KINDS = ("encoders", "heads", "losses", "datasets", "metrics", "separators", "models")

# Singular names for messages ("unknown head 'x'").
SINGULAR = {
    "encoders": "encoder",
    "heads": "head",
    "losses": "loss",
    "datasets": "dataset",
    "metrics": "metric",
    "separators": "separator",
    "models": "model",
}

# Metadata each kind accepts through register(..., **info): (required, optional). The info says
# what a component can do, so that the core asks it instead of testing names (mstt.hookspecs).
INFO_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "encoders": (frozenset(), frozenset()),
    "heads": (
        frozenset({"output", "loss"}),
        frozenset({"decode", "activation", "frame_local", "stems", "grid", "notes"}),
    ),
    "losses": (frozenset(), frozenset()),
    "datasets": (frozenset(), frozenset()),
    "metrics": (frozenset({"task"}), frozenset({"mixture_baseline", "per_example"})),
    "separators": (frozenset(), frozenset()),
    "models": (frozenset({"sha256"}), frozenset({"sources", "recipe"})),
}
# What a head's output is for (mstt.nn.outputs explains them): how it becomes stems, its grid, its notes.
MASK, CLUSTER = "mask", "cluster"
KEYS = "keys"
ROLL = "roll"
# The values some info keys take: kind -> key -> allowed values.
INFO_VALUES: dict[str, dict[str, tuple[Any, ...]]] = {
    "heads": {"stems": (MASK, CLUSTER), "grid": (KEYS,), "notes": (ROLL,)},
    "metrics": {"mixture_baseline": (False, True), "per_example": (False, True)},
}

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Component:
    """A registered component: what recipes name and the registry builds.

    For kind ``models`` the ``factory`` is the model file (a :class:`~pathlib.Path`), not a callable.
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    description: str
    options: type | None = None
    info: Mapping[str, Any] = field(default_factory=dict)


def closest(name: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    """The candidate most like ``name``, or None when nothing is close."""
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return match[0] if match else None


class Registry:
    """Components by kind and name, plus the plugins that failed to load."""

    def __init__(self) -> None:
        self._components: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
        self.errors: list[dict[str, str]] = []
        self.plugin_versions: dict[str, str] = {}

    def add(self, component: Component) -> None:
        """Add a component; a name already taken in its kind is an error naming both plugins."""
        existing = self._components[component.kind].get(component.name)
        if existing is not None:
            raise RegistryError(
                f"{SINGULAR[component.kind]} '{component.name}' is registered twice, by plugin "
                f"'{existing.plugin}' and by plugin '{component.plugin}'; uninstall one of them "
                f"or limit the loaded plugins with MSTT_LOAD_PLUGINS"
            )
        self._components[component.kind][component.name] = component

    def names(self, kind: str) -> list[str]:
        """The registered names of one kind, sorted."""
        return sorted(self._components[kind])

    def components(self, kind: str) -> list[Component]:
        """The registered components of one kind, sorted by name."""
        return [self._components[kind][name] for name in self.names(kind)]

    def get(self, kind: str, name: str, where: str | None = None) -> Component:
        """Look a component up; an unknown name lists what exists and the closest match."""
        if kind not in self._components:
            raise RegistryError(f"unknown component kind '{kind}'; kinds are {', '.join(KINDS)}")
        try:
            return self._components[kind][name]
        except KeyError:
            pass
        known = self.names(kind)
        prefix = f"{where}: " if where else ""
        hint = closest(str(name), known)
        message = f"{prefix}unknown {SINGULAR[kind]} '{name}'"
        message += f"; did you mean '{hint}'?" if hint else ""
        message += f" (known {kind}: {', '.join(known) or 'none'})"
        failed = [e["plugin"] for e in self.errors]
        if failed:
            message += f" (plugins that failed to load: {', '.join(failed)}; see `mstt plugins`)"
        raise RegistryError(message)

    def register_callback(self, kind: str, plugin: str) -> Callable[..., None]:
        """The ``register`` function handed to one plugin's hook for one kind."""

        def register(
            name: str,
            factory: Callable[..., Any],
            *,
            description: str | None = None,
            options: type | None = None,
            **info: Any,
        ) -> None:
            self.add(make_component(kind, plugin, name, factory, description, options, info))

        return register


def make_component(
    kind: str,
    plugin: str,
    name: Any,
    factory: Any,
    description: str | None,
    options: Any,
    info: dict[str, Any],
) -> Component:
    """Check one registration and build its Component; junk raises RegistryError."""
    what = f"plugin '{plugin}' registers {SINGULAR[kind]}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(f"{what} with name {name!r}; names are lower-case [a-z][a-z0-9_]*")
    if kind == "models":
        factory = _model_file(what, name, factory, info)
    elif not callable(factory):
        raise RegistryError(f"{what} '{name}' with a factory that is not callable: {factory!r}")
    if options is not None and not (isinstance(options, type) and dataclasses.is_dataclass(options)):
        raise RegistryError(f"{what} '{name}' with options={options!r}; pass a dataclass type")
    required, optional = INFO_KEYS[kind]
    missing = sorted(required - info.keys())
    if missing:
        raise RegistryError(f"{what} '{name}' without {', '.join(missing)}")
    unknown = sorted(info.keys() - required - optional)
    if unknown:
        allowed = sorted(required | optional)
        raise RegistryError(
            f"{what} '{name}' with unknown info {', '.join(unknown)}; "
            f"allowed: {', '.join(allowed) or 'none'}"
        )
    for key, values in INFO_VALUES.get(kind, {}).items():
        if key in info and (type(info[key]), info[key]) not in [(type(v), v) for v in values]:  # True, not 1
            raise RegistryError(f"{what} '{name}' with {key}={info[key]!r}; use one of {', '.join(map(repr, values))}")
    if description is None and kind == "models":
        description = ""
    if description is None:
        doc = (getattr(factory, "__doc__", None) or "").strip()
        description = doc.splitlines()[0] if doc else ""
    return Component(kind, name, factory, plugin, description, options, dict(info))


def _model_file(what: str, name: str, path: Any, info: dict[str, Any]) -> Path:
    """Check a model registration (a file path, its sha256, optional sources and recipe name) -> the path."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise RegistryError(f"{what} '{name}' with {path!r} for its file; pass the model file's path")
    sha = info.get("sha256")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise RegistryError(f"{what} '{name}' with sha256={sha!r}; pass the file's sha256 as 64 lower-case hex digits")
    sources = info.get("sources")
    if sources is not None and not (isinstance(sources, (list, tuple)) and all(isinstance(s, str) for s in sources)):
        raise RegistryError(f"{what} '{name}' with sources={sources!r}; pass a list of source names")
    if "recipe" in info and not isinstance(info["recipe"], (str, type(None))):
        raise RegistryError(f"{what} '{name}' with recipe={info['recipe']!r}; pass the recipe's name")
    return Path(path)

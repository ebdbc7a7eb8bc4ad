"""One pluggy PluginManager: built-in components first, then entry points of group ``mstt``."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import threading

import pluggy

from mstt import hookspecs
from mstt.errors import RegistryError
from mstt.registry import KINDS, Registry, make_component

# Built-in plugin modules, registered in-process exactly like third-party ones.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "mstt.nn.encoders",
    "mstt.nn.heads",
    "mstt.losses",
    "mstt.data.adapters",
    "mstt.data.synthetic",
    "mstt.metrics",
    "mstt.models",  # the trained models shipped under mstt/models/ (models.json)
)

BUILTIN = "builtin"

# MSTT_LOAD_PLUGINS="a,b" loads only those entry points (by entry-point or distribution
# name); an empty value loads none. Unset loads all. It makes runs and tests reproducible.
LOAD_PLUGINS_ENV = "MSTT_LOAD_PLUGINS"

_lock = threading.Lock()
_registry: Registry | None = None


def _selected_entry_points() -> list[importlib.metadata.EntryPoint]:
    """Entry points of group ``mstt``, filtered by MSTT_LOAD_PLUGINS when it is set."""
    points = list(importlib.metadata.entry_points(group="mstt"))
    wanted = os.environ.get(LOAD_PLUGINS_ENV)
    if wanted is None:
        return points
    names = {n.strip() for n in wanted.split(",") if n.strip()}
    return [ep for ep in points if ep.name in names or (ep.dist and ep.dist.name in names)]


def _distribution(ep: importlib.metadata.EntryPoint) -> tuple[str, str]:
    """(distribution name, version) of an entry point, falling back to its own name."""
    if ep.dist is not None:
        return ep.dist.name, ep.dist.version
    return ep.name, "unknown"


def build_registry(builtins: tuple[str, ...] = BUILTIN_PLUGINS, entry_points: bool = True) -> Registry:
    """Load every plugin and register its components; a plugin that fails is recorded."""
    pm = pluggy.PluginManager("mstt")
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    owner: dict[str, str] = {}  # pluggy plugin name -> distribution name

    from mstt import __version__

    for module_name in builtins:
        pm.register(importlib.import_module(module_name), name=module_name)
        owner[module_name] = BUILTIN
    registry.plugin_versions[BUILTIN] = __version__

    if entry_points:
        for ep in _selected_entry_points():
            dist, version = _distribution(ep)
            try:
                module = ep.load()
                pm.register(module, name=f"{dist}:{ep.name}")
            except Exception as exc:  # a broken plugin must not break the others
                registry.errors.append({"plugin": dist, "error": f"{type(exc).__name__}: {exc}"})
                continue
            owner[f"{dist}:{ep.name}"] = dist
            registry.plugin_versions[dist] = version

    for kind in KINDS:
        caller = getattr(pm.hook, f"mstt_register_{kind}")
        # One call per implementation, so that each registration is attributed to its plugin
        # and one plugin raising does not lose the others' components.
        for impl in caller.get_hookimpls():
            plugin = owner.get(impl.plugin_name, impl.plugin_name)
            staged: list = []

            def register(
                name, factory, *, description=None, options=None, _kind=kind, _plugin=plugin, _staged=staged, **info
            ):
                _staged.append(make_component(_kind, _plugin, name, factory, description, options, info))

            try:
                impl.function(register=register)
            except RegistryError as exc:
                if plugin == BUILTIN:
                    raise
                registry.errors.append({"plugin": plugin, "error": str(exc)})
                continue
            except Exception as exc:
                if plugin == BUILTIN:
                    raise
                registry.errors.append(
                    {"plugin": plugin, "error": f"mstt_register_{kind} raised {type(exc).__name__}: {exc}"}
                )
                continue
            for component in staged:
                registry.add(component)  # duplicates are a hard error naming both plugins
    return registry


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = build_registry()
        return _registry


def reset_registry() -> None:
    """Forget the process-wide registry (tests, or after installing a plugin)."""
    global _registry
    with _lock:
        _registry = None

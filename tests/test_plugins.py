"""Plugin loading: built-ins, third-party entry points, broken, duplicate and junk plugins."""

from __future__ import annotations

import json
import re

import pytest

from mstt.cli import main
from mstt.errors import RegistryError
from mstt.plugins import build_registry

GOOD = """
from dataclasses import dataclass
from torch import nn
from mstt import hookimpl

@dataclass
class Opts:
    size: int = 3

class Echo(nn.Module):
    '''Echoes the trunk.'''
    def __init__(self, in_features, n_sources, n_freq, options):
        super().__init__()
        self.proj = nn.Linear(in_features, options.size)
    def forward(self, x):
        return self.proj(x)

@hookimpl
def mstt_register_heads(register):
    register("echo", Echo, output="echo", loss="transcription", options=Opts)
"""


def test_builtins_are_registered_by_the_same_hooks():
    registry = build_registry(entry_points=False)
    assert {"blstm", "tcn", "transformer"} <= set(registry.names("encoders"))
    assert {"dc", "mi", "tr"} <= set(registry.names("heads"))
    assert {c.plugin for c in registry.components("heads")} == {"builtin"}
    assert registry.get("heads", "mi").info["output"] == "mask"


def test_third_party_plugin_is_indistinguishable(make_plugin):
    make_plugin("mstt-echo", "mstt_echo", GOOD)
    registry = build_registry()
    echo = registry.get("heads", "echo")
    assert echo.plugin == "mstt-echo"
    assert echo.description == "Echoes the trunk."
    assert registry.plugin_versions["mstt-echo"] == "1.0"


def test_plugin_that_raises_on_import_is_recorded_and_others_work(make_plugin):
    make_plugin("mstt-broken", "mstt_broken", "raise ImportError('needs libfoo')\n")
    make_plugin("mstt-echo", "mstt_echo", GOOD)
    registry = build_registry()
    assert registry.errors == [{"plugin": "mstt-broken", "error": "ImportError: needs libfoo"}]
    assert "echo" in registry.names("heads")


def test_plugin_whose_hook_raises_is_recorded(make_plugin):
    make_plugin(
        "mstt-raises",
        "mstt_raises",
        "from mstt import hookimpl\n@hookimpl\ndef mstt_register_losses(register):\n    raise RuntimeError('boom')\n",
    )
    registry = build_registry()
    assert registry.errors[0]["plugin"] == "mstt-raises"
    assert "RuntimeError: boom" in registry.errors[0]["error"]


@pytest.mark.parametrize(
    "call, fragment",
    [
        ("register('Bad Name', lambda *a: None, output='x', loss='transcription')", "names are lower-case"),
        ("register('junk', 42, output='x', loss='transcription')", "not callable"),
        ("register('junk', lambda *a: None)", "without loss, output"),
        ("register('junk', lambda *a: None, output='x', loss='transcription', colour='red')", "unknown info colour"),
        ("register('junk', lambda *a: None, output='x', loss='transcription', options=dict)", "dataclass type"),
    ],
)
def test_plugin_registering_junk_is_reported(make_plugin, call, fragment):
    make_plugin(
        "mstt-junk",
        "mstt_junk",
        f"from mstt import hookimpl\n@hookimpl\ndef mstt_register_heads(register):\n    {call}\n",
    )
    registry = build_registry()
    assert "junk" not in registry.names("heads")
    assert registry.errors[0]["plugin"] == "mstt-junk"
    assert fragment in registry.errors[0]["error"]


def test_duplicate_names_are_an_error_naming_both_plugins(make_plugin):
    make_plugin(
        "mstt-clash",
        "mstt_clash",
        "from mstt import hookimpl\n@hookimpl\ndef mstt_register_heads(register):\n"
        "    register('tr', lambda *a: None, output='x', loss='transcription')\n",
    )
    with pytest.raises(RegistryError, match="registered twice, by plugin 'builtin' and by plugin 'mstt-clash'"):
        build_registry()


def test_unknown_name_lists_known_and_closest():
    registry = build_registry(entry_points=False)
    with pytest.raises(RegistryError) as info:
        registry.get("encoders", "bilstm", where="model.encoder.name")
    message = str(info.value)
    assert message.startswith("model.encoder.name: unknown encoder 'bilstm'; did you mean 'blstm'?")
    assert "tcn" in message and "\n" not in message


def test_load_plugins_env_limits_entry_points(make_plugin, monkeypatch):
    make_plugin("mstt-echo", "mstt_echo", GOOD)
    monkeypatch.setenv("MSTT_LOAD_PLUGINS", "")
    assert "echo" not in build_registry().names("heads")


def test_plugins_command_json_reports_broken_plugin(make_plugin, capsys):
    make_plugin("mstt-broken", "mstt_broken", "import not_a_module_anywhere\n")
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"encoders", "heads", "losses", "datasets", "metrics", "separators", "models", "errors"}
    assert {"name": "tr", "plugin": "builtin"}.items() <= data["heads"][-1].items() or any(
        h["name"] == "tr" for h in data["heads"]
    )
    assert data["errors"][0]["plugin"] == "mstt-broken"
    assert "ModuleNotFoundError" in data["errors"][0]["error"]


def test_plugins_command_table(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "encoders:" in out and "blstm" in out and "builtin" in out


@pytest.mark.parametrize(
    "kind, info, fragment",
    [
        ("heads", {"output": "x", "loss": "transcription", "stems": "spectrogram"}, "stems='spectrogram'; use one of 'mask', 'cluster'"),
        ("heads", {"output": "x", "loss": "transcription", "grid": "frames"}, "grid='frames'"),
        ("metrics", {"task": "separation", "mixture_baseline": 1}, "mixture_baseline=1; use one of False, True"),
        ("metrics", {"task": "separation", "per_example": "yes"}, "per_example='yes'"),
    ],
)
def test_capability_info_takes_only_its_values(kind, info, fragment):
    from mstt.registry import make_component

    with pytest.raises(RegistryError, match=re.escape(fragment)):
        make_component(kind, "mstt-junk", "junk", lambda *a: None, None, None, info)

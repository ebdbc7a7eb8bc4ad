"""What each output of a model is for, as its head registered it: stems, the roll's grid, notes.

Evaluation and separation read stems, the roll and the other frame outputs through
:func:`output_roles` instead of testing output names or shapes. A head declares its role with
register(..., stems=..., grid=..., notes=...) (see :mod:`mstt.hookspecs`); a separator's
``stems`` output is waveforms by the separator contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mstt.nn.separator import OUTPUT as SEPARATOR_OUTPUT
from mstt.plugins import get_registry
from mstt.registry import CLUSTER, KEYS, MASK, ROLL

# How an output becomes stems, in the order they are taken when a model has several (so a model
# with deep clustering and mask inference heads separates with its masks):
# WAVEFORM: stems as they are (a separator's; no head registers it);
# MASK: per-source masks (batch, sources, freq, frames) applied to the mixture spectrogram;
# CLUSTER: embeddings (batch, freq, frames, dim) clustered into masks, in no fixed source order.
WAVEFORM = "waveform"
STEMS_ORDER = (WAVEFORM, MASK, CLUSTER)
# KEYS: the grid (batch, sources, 88, frames): STFT frames, one row per piano key.
# ROLL: the output's values are the note probabilities notes are read from.
__all__ = ["CLUSTER", "KEYS", "MASK", "ROLL", "STEMS_ORDER", "WAVEFORM", "OutputRole", "head_role", "output_roles",
           "stems_output"]


@dataclass(frozen=True)
class OutputRole:
    """What one output is for; None where it is not."""

    stems: str | None = None  # WAVEFORM, MASK or CLUSTER
    grid: str | None = None  # KEYS: stitched frame by frame over chunks, handed to note decoders
    notes: str | None = None  # ROLL


def head_role(info: Mapping[str, Any]) -> OutputRole:
    """The role a head's registered info gives its output.

    A head registered with ``notes`` or ``decode`` has its output on the roll's grid unless it
    says otherwise: the roll is, and a decoder reads its output beside the roll.
    """
    notes = info.get("notes")
    grid = info.get("grid") or (KEYS if notes is not None or info.get("decode") is not None else None)
    return OutputRole(stems=info.get("stems"), grid=grid, notes=notes)


def output_roles(model: Any = None) -> dict[str, OutputRole]:
    """Output name -> role for ``model``'s outputs.

    A head of ``model.specs`` gives its output the role its registered head declares. Outputs no
    spec covers (a model not built from a recipe, such as a test's fake) take the role of the
    registered head that writes an output of that name.
    """
    heads = {component.name: component for component in get_registry().components("heads")}
    roles = {SEPARATOR_OUTPUT: OutputRole(stems=WAVEFORM)}
    for component in heads.values():
        roles.setdefault(component.info["output"], head_role(component.info))
    for spec in getattr(model, "specs", {}).values():
        component = heads.get(spec.name)
        if component is not None and component.info["output"] == spec.output:
            roles[spec.output] = head_role(component.info)
    return roles


def stems_output(roles: Mapping[str, OutputRole], outputs: Mapping[str, Any]) -> tuple[str, str] | None:
    """(output name, how) of the output stems are read from, by :data:`STEMS_ORDER`; None when none is."""
    for how in STEMS_ORDER:
        for name, role in roles.items():
            if role.stems == how and name in outputs:
                return name, how
    return None

"""The hooks a plugin implements: one per component kind, each handed a ``register`` callback.

This file is the plugin author's reference. A plugin is a module (made known through an
entry point of group ``mstt``) holding functions decorated with :data:`hookimpl`::

    from mstt import hookimpl

    @hookimpl
    def mstt_register_heads(register):
        register("onset", OnsetHead, loss="onset_bce", options=OnsetHeadOptions)

Every ``register`` callback has the signature::

    register(name, factory, *, description=None, options=None, **info)

- ``name``: the registry name recipes use (lower case, ``[a-z][a-z0-9_]*``), unique per kind.
- ``factory``: a callable that builds the component (its arguments are given per hook below).
- ``description``: one line for ``mstt plugins``; defaults to the first line of the factory's
  docstring.
- ``options``: a dataclass type with defaults: the schema of the component's recipe options.
  The factory receives an instance of it (validated, typed) as its ``options`` argument.
  ``None`` means the component takes no options.
- ``info``: kind-specific metadata, listed per hook below; unknown keys are an error.

The built-in components are registered through these same hooks, before entry points load.
"""

from __future__ import annotations

from typing import Callable

import pluggy

hookspec = pluggy.HookspecMarker("mstt")
hookimpl = pluggy.HookimplMarker("mstt")

Register = Callable[..., None]


@hookspec
def mstt_register_encoders(register: Register) -> None:
    """Register trunk encoders: ``factory(n_freq, options) -> nn.Module``.

    The module maps input features ``(batch, frames, n_freq)`` to ``(batch, frames,
    out_features)`` and exposes the integer attribute ``out_features``.
    """


@hookspec
def mstt_register_heads(register: Register) -> None:
    """Register output heads: ``factory(in_features, n_sources, n_freq, options) -> nn.Module``.

    The module maps trunk features ``(batch, frames, in_features)`` to one tensor. Required
    info: ``output`` (the name of that tensor in the model's outputs, e.g. ``"mask"``) and
    ``loss`` (the registry name of the head's default loss). Optional info: ``activation``, a
    callable applied to the raw output before decoding (e.g. ``torch.sigmoid`` for a head that
    outputs logits), and ``decode``, which lets the head change how notes are read from the
    transcription roll::

        decode(roll, output, frame_rate, decoding) -> list[notes]

    with ``roll`` the sigmoid piano roll ``(sources, 88, frames)`` of one example, ``output``
    this head's activated output for that example, ``decoding`` the recipe's thresholds (a
    :class:`mstt.decode.notes.NoteDecoding`), and one notes array ``(n, 4)`` =
    ``[onset_s, offset_s, midi_pitch, velocity]`` per source returned (see
    :func:`mstt.decode.notes.decode_notes`). The onset head of ``plugins/mstt-onset-head``
    uses it to split notes at detected onsets.

    ``frame_local=True`` declares that the head's output at frame t depends on trunk frame t
    alone (a per-frame layer, as all built-in heads are). Such a head may be trained on a
    random subset of frames each step (``model.heads.<key>.train_frames`` below 1), which
    makes a head with a large output, like deep clustering's embedding, cheaper to train.

    What the output is for (:mod:`mstt.nn.outputs`; evaluation and separation ask this, never
    the head's or the output's name): ``stems="mask"`` (per-source masks ``(batch, sources,
    freq, frames)`` applied to the mixture spectrogram) or ``stems="cluster"`` (embeddings
    ``(batch, freq, frames, dim)`` clustered into masks, in no fixed source order);
    ``grid="keys"`` (the output is ``(batch, sources, 88, frames)`` on the roll's grid: stitched
    over chunks and handed to note decoders; implied by ``notes`` and ``decode``);
    ``notes="roll"`` (the output's activated values are the note probabilities notes are read
    from, as the built-in ``tr`` head's).
    """


@hookspec
def mstt_register_losses(register: Register) -> None:
    """Register losses: ``factory(options) -> callable(prediction, targets) -> scalar Tensor``.

    ``prediction`` is the output of the head the loss is attached to; ``targets`` is a
    :class:`mstt.features.Targets` holding the mixture and source spectrograms and rolls.
    """


@hookspec
def mstt_register_datasets(register: Register) -> None:
    """Register dataset adapters: ``factory(root, sources, sample_rate, options) -> adapter``.

    The adapter lists tracks per split and yields examples (see :mod:`mstt.data`).
    """


@hookspec
def mstt_register_metrics(register: Register) -> None:
    """Register evaluation metrics: ``factory(options) -> callable``.

    Required info: ``task``, ``"separation"`` or ``"transcription"``. A separation metric is
    ``fn(estimate, reference) -> dict[str, Tensor]`` on waveforms ``(n, samples)`` giving one
    value per row; a transcription metric is ``fn(reference_notes, estimated_notes, frame_rate)
    -> dict[str, dict[str, float]]``.

    Optional info for separation metrics: ``mixture_baseline=True`` also scores the mixture as
    the estimate and reports, for each key ``k``, ``k + "i"`` = k(estimate) - k(mixture)
    (``si_sdr`` gives ``si_sdri``); ``per_example=True`` says the rows of one call must be the
    sources of one example (``bss_eval``'s SIR and SAR compare each estimate with all the
    references), so it is called once per example on every source, silent ones included, and
    its keys fill in only those no batched metric gave.
    """


@hookspec
def mstt_register_separators(register: Register) -> None:
    """Register whole separation models (e.g. asteroid's): ``factory(n_sources, sample_rate,
    options) -> nn.Module`` mapping a mixture waveform ``(batch, samples)`` to source
    waveforms ``(batch, sources, samples)``.
    """


@hookspec
def mstt_register_models(register: Register) -> None:
    """Register trained models that ship with a distribution, addressed by name.

    Here ``register`` takes the model's file instead of a factory::

        register(name, path, *, description=None, sha256, sources=None, recipe=None)

    - ``path``: an mstt checkpoint or ``mstt export`` file inside the distribution (declare it
      as package data so that a wheel carries it).
    - ``sha256``: required, the file's checksum as 64 lower-case hex digits. Loading the model
      by name verifies it; a mismatch tells the user to reinstall the distribution.
    - ``sources``, ``recipe``: the model's source names and recipe name, listed by ``mstt models``.

    Users then pass ``name`` wherever a checkpoint goes: ``mstt separate --model NAME``,
    ``mstt eval NAME``, ``mstt.load("NAME")``, ``model.init=NAME``. The model named
    ``default`` is the one ``mstt separate AUDIO`` and ``mstt.load()`` use. The simplest
    implementation registers a folder written by ``mstt export CHECKPOINT DIR/NAME.pt --bundle
    NAME`` (the files and the ``models.json`` manifest beside them)::

        from mstt.bundled import register_manifest

        @hookimpl
        def mstt_register_models(register):
            register_manifest(register, Path(__file__).parent / "models")
    """

"""``mstt eval CHECKPOINT|NAME [--data KIND[:PATH]] [--split test] [--out DIR]`` -> DIR/metrics.json and DIR/report.md."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mstt.errors import MsttError
from mstt.fileio import check_out_dir


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Attach the ``eval`` sub-command."""
    p = subparsers.add_parser("eval", help="evaluate a checkpoint on a dataset split -> metrics.json")
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="an mstt checkpoint, e.g. runs/x/checkpoints/best.pt, or a bundled model's name (mstt models)")
    p.add_argument(
        "--data",
        default=None,
        metavar="KIND:PATH",
        help="dataset adapter and folder, e.g. slakh:/data/slakh2100 (default: the checkpoint recipe's data)",
    )
    p.add_argument(
        "--data-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a dataset adapter option, repeatable, e.g. require_all_sources=false (see `mstt plugins`)",
    )
    p.add_argument("--split", default="test", help="train, validation or test (default test)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default <run folder>/eval-<kind>-<split>; for a bundled model ./eval-<name>-<kind>-<split>)")
    p.add_argument("--max-examples", type=int, default=None, metavar="N", help="evaluate at most N windows, spread over the split")
    p.add_argument("--bss-eval", action="store_true", help="also SIR and SAR through mir_eval (slow)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--strict", action="store_true", help="fail (exit 2) when the adapter skipped any track of the split")
    p.set_defaults(func=run)


def parse_data(text: str | None, recipe_kind: str, recipe_root: str | None) -> tuple[str, str | None]:
    """``KIND:PATH`` or ``KIND`` -> (kind, root); None -> the recipe's own data."""
    if text is None:
        return recipe_kind, recipe_root
    kind, sep, root = text.partition(":")
    if not kind:
        raise MsttError(f"--data {text}: write KIND:PATH, e.g. slakh:/data/slakh2100 or synth:")
    return kind, (root or None) if sep else None


def parse_data_options(items: list[str]) -> dict:
    """``["key=value", ...]`` -> a nested dict (values parsed as YAML, dotted keys nest)."""
    from omegaconf import OmegaConf

    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip():
            raise MsttError(f"--data-option {item}: write KEY=VALUE, e.g. --data-option require_all_sources=false")
    return OmegaConf.to_container(OmegaConf.from_dotlist(items)) if items else {}


def run_folder(checkpoint: Path) -> Path:
    """The run folder a checkpoint belongs to (the parent of ``checkpoints/``), else its own folder."""
    parent = checkpoint.resolve().parent
    return parent.parent if parent.name == "checkpoints" else parent


def run(args: argparse.Namespace) -> int:
    """Evaluate the checkpoint as the command line asks; print the summary."""
    from mstt.experiment import summary_lines

    metrics, out = evaluate(
        args.checkpoint, data=args.data, data_options=args.data_option, split=args.split, max_examples=args.max_examples,
        bss_eval=args.bss_eval, device=args.device, strict=args.strict, out=args.out,
    )
    for line in summary_lines(metrics):
        print(line)
    print(f"wrote {out / 'metrics.json'} and {out / 'report.md'}")
    return 0


def evaluate(
    checkpoint: str | Path,
    *,
    data: str | None = None,
    data_options: list[str] | None = None,
    split: str = "test",
    max_examples: int | None = None,
    bss_eval: bool = False,
    device: str = "auto",
    strict: bool = False,
    out: Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], Path]:
    """What ``mstt eval`` does, callable in-process (benchmarks/ablation.py's extra sets): -> (metrics, output folder)."""
    from mstt.bundled import resolve_model
    from mstt.checkpoints import model_from_checkpoint
    from mstt.devices import resolve_device
    from mstt.experiment import build_adapter, evaluate_checkpoint

    if out is not None:
        check_out_dir(out)  # before the slow part, not after it
    path, name = resolve_model(str(checkpoint))
    model, config, _ = model_from_checkpoint(path)
    config.eval.split = split
    if max_examples is not None:
        if max_examples < 1:
            raise MsttError(f"--max-examples {max_examples}: need at least 1")
        config.eval.max_examples = max_examples
    if bss_eval:
        config.eval.bss_eval = True
    where = resolve_device(device)
    kind, root = parse_data(data, config.data.kind, config.data.root)
    adapter = build_adapter(config, kind, root, parse_data_options(list(data_options or [])))
    # A bundled model lives in the installed package: its evaluation goes to the working folder instead.
    run_dir = run_folder(path) if name is None else Path(".")
    out = check_out_dir(out or run_dir / (f"eval-{kind}-{split}" if name is None else f"eval-{name}-{kind}-{split}"))
    logs = {"train": run_dir / "logs" / "train.csv", "validation": run_dir / "logs" / "validation.csv"}
    metrics = evaluate_checkpoint(config, model, path, adapter, out, logs, where, progress, strict)
    return metrics, out

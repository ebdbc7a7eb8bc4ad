"""report.md / report.html: tables, learning curves, example figures and audio that exist."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile as sf

from mstt.evaluate import ReportExample
from mstt.report import read_history, separation_table, transcription_table, write_report

SR, HOP, N_FFT = 8000, 64, 256
SOURCES = ["piano", "drums"]


def prf(f1: float) -> dict[str, float]:
    return {"precision": f1, "recall": f1, "f1": f1}


METRICS = {
    "recipe": "cerberus_set1",
    "checkpoint": "runs/x/checkpoints/best.pt",
    "split": "test",
    "n_examples": 2,
    "separation": {
        "piano": {"si_sdr": 5.5, "si_sdri": 8.25, "sdr": 6.0},
        "drums": {"si_sdr": 12.0, "si_sdri": 14.0, "sdr": None},
        "mean": {"si_sdr": 8.75, "si_sdri": 11.1, "sdr": 6.0},
    },
    "transcription": {
        "piano": {"frame": prf(0.9), "onset": prf(0.8), "onset_offset": prf(0.5)},
        "drums": {"frame": prf(0.7), "onset": prf(0.6)},
        "mean": {"frame": prf(0.8), "onset": prf(0.7), "onset_offset": prf(0.5)},
    },
}


def example(separated: bool = True, transcribed: bool = True) -> ReportExample:
    """Random arrays of the shapes the evaluation keeps (1 s)."""
    rng = np.random.default_rng(0)
    n, frames, n_freq = SR, 1 + SR // HOP, N_FFT // 2 + 1
    references = rng.normal(0, 0.1, (2, n)).astype(np.float32)
    masks = rng.uniform(0, 1, (2, n_freq, frames)).astype(np.float32)
    roll = (rng.uniform(0, 1, (2, 88, frames)) > 0.95).astype(np.float32)
    return ReportExample(
        track="Track00001",
        start=2.0,
        sample_rate=SR,
        hop_length=HOP,
        sources=SOURCES,
        mixture=references.sum(0),
        references=references,
        magnitude=rng.uniform(0, 1, (n_freq, frames)).astype(np.float32),
        ref_masks=masks,
        estimates=references * 1.5 if separated else None,  # 1.5: loud enough to need scaling
        est_masks=masks[::-1].copy() if separated else None,
        est_roll=roll[::-1].copy() if transcribed else None,
        ref_roll=roll if transcribed else None,
    )


def write_logs(run: Path) -> dict[str, Path]:
    logs = run / "logs"
    logs.mkdir(parents=True)
    (logs / "train.csv").write_text("step,time,lr,loss,loss/tr\n10,1.0,0.001,0.9,0.8\n20,2.0,0.001,0.5,0.4\n")
    (logs / "validation.csv").write_text("step,time,lr,loss,loss/tr\n20,2.0,0.001,0.6,0.5\n")
    return {"train": logs / "train.csv", "validation": logs / "validation.csv"}


def links(markdown: str) -> list[str]:
    """Targets of every markdown image and link."""
    return re.findall(r"\]\(([^)]+)\)", markdown)


def test_report_files_exist_and_the_markdown_points_at_them(tmp_path):
    run = tmp_path / "run"
    logs = write_logs(run)
    path = write_report(run, METRICS, logs, [example(), example()], ["drums: 1 of 2 examples have a silent reference"])
    assert path == run / "report.md"
    text = path.read_text()
    targets = links(text)
    images = [t for t in targets if t.endswith(".png")]
    assert "report/learning_curves.png" in images
    assert {"report/example1_masks.png", "report/example1_rolls.png", "report/example2_rolls.png"} <= set(images)
    assert any(t.endswith("example1_piano_estimate.wav") for t in targets)
    for target in targets:
        assert (run / target).is_file(), target
        assert (run / target).stat().st_size > 0
    assert "| piano | 5.50 | 8.25 | 6.00 |" in text
    assert "| drums | 12.00 | 14.00 | – |" in text  # an unscored value is a dash
    assert "| drums | 0.700 | 0.600 | – |" in text  # drums: no on/off
    assert "| **mean** | 8.75 | 11.10 | 6.00 |" in text
    assert "silent reference" in text
    page = (run / "report.html").read_text()
    assert page.count("<audio") == 2 * 5 and "report/learning_curves.png" in page
    audio, rate = sf.read(run / "report/example1_piano_estimate.wav")
    assert rate == SR and np.abs(audio).max() <= 1.0


def test_absent_heads_and_logs_leave_their_sections_out(tmp_path):
    metrics = {k: v for k, v in METRICS.items() if k != "separation"}
    path = write_report(tmp_path, metrics, [tmp_path / "logs/train.csv"], [example(separated=False)])
    text = path.read_text()
    assert "Separation" not in text and "Transcription" in text
    assert "Learning curves" not in text and not (tmp_path / "report/learning_curves.png").exists()
    assert "estimate" not in text  # no stems to listen to
    for target in links(text):
        assert (tmp_path / target).is_file(), target


def test_separation_only_report_has_no_roll_figure(tmp_path):
    metrics = {k: v for k, v in METRICS.items() if k != "transcription"}
    text = write_report(tmp_path, metrics, {}, [example(transcribed=False)]).read_text()
    assert "Transcription" not in text
    assert "example1_masks.png" in text and "example1_rolls.png" not in text


def test_tables_list_sources_then_mean():
    rows = separation_table(METRICS["separation"])
    assert rows[0] == ["source", "SI-SDR (dB)", "SI-SDRi (dB)", "SDR (dB)"]
    assert [r[0] for r in rows[1:]] == ["piano", "drums", "**mean**"]
    with_bss = separation_table({"piano": {"si_sdr": 1.0, "sdr": 2.0, "sir": 3.0, "sar": 4.0}})
    assert with_bss[0] == ["source", "SI-SDR (dB)", "SDR (dB)", "SIR (dB)", "SAR (dB)"]
    assert transcription_table(METRICS["transcription"])[1] == ["piano", "0.900", "0.800", "0.500"]


def test_history_reader_tolerates_missing_and_empty_logs(tmp_path):
    assert read_history(tmp_path / "missing.csv") == {}
    (tmp_path / "empty.csv").write_text("step,loss\n")
    assert read_history(tmp_path / "empty.csv") == {}
    (tmp_path / "gap.csv").write_text("step,loss\n1,0.5\n2,\n")
    history = read_history(tmp_path / "gap.csv")
    assert history["step"].tolist() == [1.0, 2.0] and np.isnan(history["loss"][1])


def test_the_title_names_the_recipe_and_split_when_there_is_a_separation_table(tmp_path):
    # A regression of 5d7ffda: the separation table's heading overwrote the report's title.
    path = write_report(tmp_path, {**METRICS, "recipe": "r", "split": "test"}, [], [])
    assert path.read_text().startswith("# r: evaluation on test\n")
    assert "<h1>r: evaluation on test</h1>" in (tmp_path / "report.html").read_text()

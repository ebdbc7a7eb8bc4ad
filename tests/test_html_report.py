"""The HTML report in a real browser: headless Chromium (Debian packages chromium + chromium-driver) via selenium.

The page is served over HTTP from its own folder; every <audio> must reach HAVE_METADATA without
an error, every <img> must decode (naturalWidth > 0), and the console must hold no errors.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mstt.report.html import pianoroll_figure, spectrogram_figure, write_html_report
from tests.test_inference import checkpoint  # noqa: F401  (fixtures)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
METRICS = {
    "recipe": "cerberus_set1", "checkpoint": "runs/x/checkpoints/best.pt", "split": "test", "n_examples": 2,
    "separation": {"piano": {"si_sdr": 5.0, "si_sdri": 2.0, "sdr": 5.5}, "mean": {"si_sdr": 5.0, "si_sdri": 2.0, "sdr": 5.5}},
    "transcription": {"piano": {"frame": {"f1": 0.8}, "onset": {"f1": 0.7}, "onset_offset": {"f1": 0.4}},
                      "mean": {"frame": {"f1": 0.8}, "onset": {"f1": 0.7}, "onset_offset": {"f1": 0.4}}},
}


def _tone(path: Path, seconds: float = 1.0, rate: int = 16000, subtype: str = "PCM_16", freq: float = 440.0) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), rate, subtype=subtype)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Chromium driven by chromedriver; skipped only when the browser is not installed."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("chromium / chromium-driver not installed (apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def serve():
    """Serve a folder over HTTP on a free local port; yields a function folder -> base URL."""
    servers = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest's output clean
            pass

    def start(folder: Path) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


_STATE = """
return {
  audio: Array.from(document.querySelectorAll('audio')).map(a => ({
    src: a.getAttribute('src'), ready: a.readyState, error: a.error ? a.error.code : null})),
  images: Array.from(document.querySelectorAll('img')).map(i => ({
    src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth})),
};
"""


def page_problems(driver, url: str, wait: float = 20.0) -> tuple[list[str], dict]:
    """Load ``url``; wait until every audio element has metadata or an error; list what failed to load."""
    driver.get_log("browser")  # drop entries of earlier pages
    driver.get(url)
    deadline = time.monotonic() + wait
    while True:
        state = driver.execute_script(_STATE)
        settled = all(a["ready"] >= 1 or a["error"] for a in state["audio"]) and all(i["complete"] for i in state["images"])
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    problems = [f"audio {a['src']}: readyState {a['ready']}, error {a['error']}"
                for a in state["audio"] if a["ready"] < 1 or a["error"]]
    problems += [f"image {i['src']}: naturalWidth {i['width']}" for i in state["images"] if i["width"] <= 0]
    problems += [f"console {e['level']}: {e['message']}" for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return problems, state


def test_report_loads_every_player_and_image(browser, serve, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder = tmp_path / "report"
    folder.mkdir()
    audio = {
        "mixture": _tone(folder / "mixture.wav"),
        "piano": _tone(folder / "piano.wav", subtype="FLOAT", freq=262),  # mstt separate writes float stems
        "guitar": _tone(elsewhere / "guitar.flac", rate=44100, freq=330),  # outside: copied into media/
    }
    rolls = {"piano": np.random.default_rng(0).random((88, 200)), "guitar": np.zeros((88, 200))}
    images = {
        "spectrograms": spectrogram_figure({k: v for k, v in audio.items()}, folder / "spectrograms.png"),
        "piano rolls": pianoroll_figure(rolls, 62.5, elsewhere / "rolls.png", references=rolls),
    }
    page = write_html_report(folder, "a report <with> markup", audio, images, METRICS, notes=["a note"])
    assert (folder / "media" / "guitar.flac").is_file() and (folder / "media" / "rolls.png").is_file()
    shutil.rmtree(elsewhere)  # self-contained: nothing outside the folder is needed any more
    problems, state = page_problems(browser, serve(folder) + page.name)
    assert problems == []
    assert len(state["audio"]) == 3 and len(state["images"]) == 2
    title = browser.find_element("tag name", "h1").text
    assert title == "a report <with> markup"
    tables = browser.find_elements("tag name", "table")
    assert len(tables) == 2 and "SI-SDR" in tables[0].text and "Onset F1" in tables[1].text


def test_broken_page_is_reported(browser, serve, tmp_path):
    """The check itself: a missing image, a missing and an undecodable audio file are all caught."""
    folder = tmp_path / "broken"
    folder.mkdir()
    _tone(folder / "ok.wav")
    (folder / "noise.wav").write_bytes(b"not a wave file at all" * 10)
    (folder / "index.html").write_text(
        "<!doctype html><html><head><link rel='icon' href='data:,'></head><body>"
        "<audio preload='metadata' src='ok.wav'></audio><audio preload='metadata' src='gone.wav'></audio>"
        "<audio preload='metadata' src='noise.wav'></audio><img src='gone.png'></body></html>"
    )
    problems, _ = page_problems(browser, serve(folder) + "index.html", wait=10)
    text = "\n".join(problems)
    assert "audio gone.wav" in text and "audio noise.wav" in text and "image gone.png" in text
    assert "console SEVERE" in text  # the 404s are logged
    assert "audio ok.wav" not in text


def test_separate_html_page_loads(browser, serve, tmp_path, checkpoint):  # noqa: F811
    """The page ``mstt separate --html`` writes: mixture, every stem, spectrograms, piano rolls."""
    from mstt.cli import main

    song = _tone(tmp_path / "song.wav", seconds=2.0, rate=22050)
    assert main(["separate", str(checkpoint), str(song), "--out", str(tmp_path / "out"), "--html", "--quiet"]) == 0
    folder = tmp_path / "out" / "song"
    problems, state = page_problems(browser, serve(folder) + "report.html")
    assert problems == []
    assert [a["src"] for a in state["audio"]] == ["mixture.wav", "piano.wav", "guitar.wav"]
    assert [i["src"] for i in state["images"]] == ["spectrograms.png", "pianoroll.png"]

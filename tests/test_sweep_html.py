"""The sweep's HTML report opened in headless Chromium: the plots render, no script errors, and
nothing is fetched from the network."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from compiler.costs import CostSettings
from compiler.sweep import run_sweep
from tests.models.sweep_models import tiny, write_eval

BROWSER = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="headless Chromium is not installed (Debian: "
                                                        "apt-get install chromium), so the report is not opened")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1700"]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("html")
    model, inputs = tiny()
    result = run_sweep(model, "fold-bn\nprune{ratio=sweep[0.25, 0.5]}\nquantize{weights=sweep[int8, int4]}\n"
                              "target onnx{opset=21}", folder / "out", example_inputs=inputs,
                       evaluate=write_eval(folder), workers=2, settings=CostSettings(runs=3))
    return result.paths["html"]


def _browser(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BROWSER, *FLAGS, *args], capture_output=True, text=True, timeout=120)


def test_every_plot_renders_without_script_errors(report):
    page = report.read_text()
    figures = page.count("<figure")
    assert figures == 2  # accuracy vs model size; onnx: accuracy vs throughput
    dom = _browser("--dump-dom", report.as_uri()).stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert f'data-plots="{figures}"' in body, body
    assert 'data-errors="0"' in body, body
    assert "<title>" in dom  # the script gave every point a hover label


def test_the_screenshot_is_not_blank(report, tmp_path):
    image = pytest.importorskip("PIL.Image", reason="Pillow (a matplotlib dependency) reads the screenshot")
    shot = tmp_path / "report.png"
    _browser(f"--screenshot={shot}", report.as_uri())
    pixels = image.open(shot).convert("RGB")
    top = pixels.crop((0, 0, pixels.width, 700))  # the first row of plots
    colours = top.getcolors(maxcolors=1 << 20)
    ink = sum(n for n, rgb in colours if sum(rgb) < 600) / (top.width * top.height)
    assert len(colours) > 50 and ink > 0.01, (len(colours), ink)


def test_the_report_works_offline(report):
    page = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page

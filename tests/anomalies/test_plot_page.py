"""The chart page in a real browser: Debian's Chromium, headless, renders the HTML `costlake plot` writes."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from costlake.anomalies.detect import Params
from costlake.anomalies.plot import chart_for, write_chart
from costlake.anomalies.series import load_series
from costlake.lake.warehouse import Warehouse
from helpers import ingest_and_run

START = dt.date(2025, 1, 1)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "the browser test needs Chromium: run `make chromium` (Debian's chromium package)", pytrace=False
        )
    return found


def _browser(*args: str) -> subprocess.CompletedProcess[str]:
    flags = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1000")
    return subprocess.run([_chromium(), *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_the_chart_page_renders_in_chromium(
    make_wh: Callable[..., Warehouse], write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    rows = []
    for i in range(45):
        day = (START + dt.timedelta(days=i)).isoformat()
        cost = "1400" if i == 36 else str(300 + (i * 7) % 5)
        rows.append([f"e{i}", day, "111111111111", "AmazonEC2", cost, day])
    wh = make_wh()
    ingest_and_run(wh, write_csv("bill.csv", rows))
    chart = chart_for(load_series(wh), "111111111111", "amazonec2", Params.from_settings(wh.settings))
    png, page = write_chart(chart, tmp_path / "chart" / "ec2.png")

    dom = _browser("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr
    assert "<svg" in dom.stdout and "account 111111111111 · amazonec2" in dom.stdout
    assert "<td>2025-02-06</td><td>amazonec2</td><td>spike</td>" in dom.stdout  # the anomaly table

    shot = tmp_path / "shot.png"
    made = _browser(f"--screenshot={shot}", page.as_uri())
    assert made.returncode == 0 and shot.exists(), made.stderr
    pixels = imread(shot)[:, :, :3]
    assert pixels.shape[:2] == (1000, 1200)
    # The page drew a chart: a good share of the window is not background white.
    assert (pixels < 0.9).any(axis=2).mean() > 0.01
    assert np.unique(pixels.reshape(-1, 3), axis=0).shape[0] > 20  # lines, band, markers, text
    assert png.read_bytes()[:4] == b"\x89PNG"

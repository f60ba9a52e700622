"""The report in a real headless Chromium: it renders offline, and every embedded figure decodes.

CI installs Chromium (Debian: `apt-get install -y chromium`). Without it this test fails: a report nobody
has opened in a browser is not tested.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from nas.report import write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "no Chromium found (looked for " + ", ".join(BROWSERS) + "): install it, e.g. "
        "`apt-get update && apt-get install -y chromium` on Debian/Ubuntu (CI installs it)"
    )


def headless(tmp_path, *args) -> subprocess.CompletedProcess:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


def test_report_renders_in_headless_chromium(tiny_run, tmp_path):
    import numpy as np
    from PIL import Image

    page = write_report(tiny_run, tmp_path / "report")
    url = page.resolve().as_uri()

    # The page's own script counts the images that decoded (naturalWidth > 0) once it has loaded.
    dom = headless(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = re.search(r'<body[^>]*data-images-rendered="(\d+)/(\d+)"', dom.stdout)
    assert rendered, "the page's script did not run: " + dom.stdout[:500]
    assert rendered.group(1) == rendered.group(2) == "4", rendered.group(0)

    shot = tmp_path / "shot.png"
    done = headless(tmp_path, f"--screenshot={shot}", "--window-size=1400,3000", url)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, 3000)
    pixels = np.asarray(image).astype(int)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    non_white = float((pixels.min(axis=2) < 235).mean())
    assert non_white > 0.05, f"the screenshot is almost blank ({non_white:.1%} non-white)"
    # Colours only the figures contain (the page itself is black text on white, with blue links).
    green = int(((g > 120) & (r < 110) & (b < 110)).sum())  # the Pareto front and its bars
    assert green > 500, "no figure colours in the screenshot"

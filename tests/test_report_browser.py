"""The HTML reports in a real headless browser: every figure decodes and is drawn.

The parser-level tests (test_report.py, test_detection_report.py) check what the
pages contain; only a browser says whether it can show them. Chromium comes
from Debian's ``chromium`` package (``.ci/run`` installs it, so under
``CI=true`` these tests must run, not skip).
"""

import os
import shutil
import subprocess

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from skcrater.datasets import make_crater_scene
from skcrater.detection import CraterDetector, write_detection_report
from skcrater.report import write_report

pytest.importorskip("matplotlib")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI=true but no chromium: .ci/run installs Debian's chromium package")
    pytest.skip("no chromium on PATH (Debian package chromium)", allow_module_level=True)

#: Appended to a copy of the page: once every image has loaded or failed, the
#: body gets one line saying how many images the browser decoded and drew.
_CHECK = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const drawn = images.filter((i) => i.complete && i.naturalWidth > 0 && i.width > 0);
  const line = document.createElement("pre");
  line.id = "image-check";
  line.textContent = `images ${images.length} drawn ${drawn.length}`;
  document.body.appendChild(line);
});
</script>"""


def _browser(*args, user_data):
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={user_data}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def _drawn_images(html, tmp_path):
    """(images on the page, images the browser drew), and a screenshot beside the page."""
    checked = tmp_path / "checked.html"
    checked.write_text(html.read_text().replace("</body>", _CHECK + "</body>"))
    url = checked.as_uri()
    dom = _browser("--virtual-time-budget=5000", "--dump-dom", url, user_data=tmp_path / "u1")
    line = dom.stdout.split('<pre id="image-check">', 1)[1].split("</pre>", 1)[0]
    _, total, _, drawn = line.split()
    shot = tmp_path / "screenshot.png"
    _browser(f"--screenshot={shot}", "--window-size=1280,2400", url, user_data=tmp_path / "u2")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return int(total), int(drawn)


def test_classifier_report_draws_every_figure(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(80, 16 * 16)).astype(np.uint8)
    y = (X[:, :128].mean(axis=1) + rng.normal(0, 4, 80) > 127).astype(int)
    clf = LogisticRegression(C=1e-4, max_iter=500).fit(X, y)
    result = write_report(
        clf,
        X,
        y,
        tmp_path / "report",
        provenance={"scored": "training tiles", "warning": "these are the training tiles"},
        comparison={"this": {"f1": 0.5}, "other": {"f1": 0.4, "fit s": 1.0}},
    )
    total, drawn = _drawn_images(result.html, tmp_path)
    assert total == len(result.figures) >= 4
    assert drawn == total


def test_detection_report_draws_every_figure(tmp_path):
    class Flat(LogisticRegression):
        def fit(self, X, y):
            return super().fit(np.reshape(X, (len(X), -1)), y)

        def predict_proba(self, X):
            return super().predict_proba(np.reshape(X, (len(X), -1)))

    image, catalogue = make_crater_scene(160, n_craters=25, diameter_range=(6, 30), random_state=0)
    detector = CraterDetector(
        Flat(max_iter=200), window=24, diameter_range=(8, 20), max_diameter=30, stride=6
    ).fit(image, catalogue)
    result = write_detection_report(
        detector, image, tmp_path / "det", catalogue=catalogue, min_diameter=8, max_diameter=30
    )
    total, drawn = _drawn_images(result.html, tmp_path)
    assert total == len(result.figures) == 3
    assert drawn == total

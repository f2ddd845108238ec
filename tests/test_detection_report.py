"""skcrater.detection.write_detection_report: the HTML report of a detector on one image."""

import base64
import json
import sys
from html.parser import HTMLParser

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from skcrater.datasets import make_crater_scene
from skcrater.detection import CraterDetector, match_craters, write_detection_report

pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"
ALL_FIGURES = ["detections", "precision_recall", "score_map"]
SCORED = dict(min_diameter=8, max_diameter=30)


class Flat(LogisticRegression):
    """Logistic regression on the tiles' pixels: a detector that trains in a second."""

    def fit(self, X, y):
        return super().fit(np.reshape(X, (len(X), -1)), y)

    def predict_proba(self, X):
        return super().predict_proba(np.reshape(X, (len(X), -1)))


def detector(**overrides):
    params = dict(window=24, diameter_range=(8, 20), max_diameter=30, stride=6, random_state=0)
    return CraterDetector(Flat(max_iter=200), **{**params, **overrides})


@pytest.fixture(scope="module")
def scenes():
    return [
        make_crater_scene(160, n_craters=25, diameter_range=(6, 30), random_state=seed)
        for seed in (0, 1)
    ]


@pytest.fixture(scope="module")
def fitted(scenes):
    return detector().fit(*scenes[0])


class _Page(HTMLParser):
    """The page's images and links, and the text of its cards (value, label)."""

    def __init__(self):
        super().__init__()
        self.images, self.links, self.cards, self._in_card = {}, [], {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images[attrs["alt"]] = attrs["src"]
        self.links += [attrs[key] for key in ("src", "href") if key in attrs]
        if attrs.get("class") == "card":
            self._in_card = []

    def handle_data(self, data):
        if self._in_card is not None:
            self._in_card.append(data)
            if len(self._in_card) == 2:
                value, label = self._in_card
                self.cards[label], self._in_card = value, None


def _parse(result):
    """The parsed page, after checking every figure is embedded as its own PNG file."""
    page = _Page()
    page.feed(result.html.read_text())
    assert set(page.images) == set(result.figures)
    for name, src in page.images.items():
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        data = base64.b64decode(src[len(prefix) :], validate=True)
        assert data.startswith(PNG) and data == result.figures[name].read_bytes()
    assert all(link.startswith("data:") for link in page.links)  # self-contained
    return page


def test_report_with_a_catalogue_shows_three_figures_and_the_scores_of_match_craters(
    fitted, scenes, tmp_path
):
    image, catalogue = scenes[1]
    result = write_detection_report(fitted, image, tmp_path / "out", catalogue=catalogue, **SCORED)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["report.html", "metrics.json", *(f"{name}.png" for name in ALL_FIGURES)]
    )
    assert sorted(result.figures) == ALL_FIGURES
    page = _parse(result)
    found = fitted.predict(image)[0]
    expected = match_craters(found, catalogue, **SCORED)
    errors = expected.matches.loc[expected.matches["scored"], "diameter_error"].abs()
    saved = json.loads(result.metrics_json.read_text())
    assert saved["metrics"] == result.metrics
    assert result.metrics == {
        "n_detections": len(found),
        "threshold": fitted.threshold_,
        "craters": expected.tp + expected.fn,
        **{key: expected[key] for key in ("tp", "fp", "fn", "precision", "recall", "f1")},
        "average_precision": pytest.approx(expected.average_precision),
        "median_diameter_error": pytest.approx(errors.median()),
    }
    assert 0 < expected.tp < len(found)  # a scene with hits and false detections to show
    assert page.cards["F1"] == f"{expected.f1:.4g}"
    assert page.cards["detections"] == str(len(found))
    assert page.cards["missed"] == str(expected.fn)


def test_page_says_which_threshold_is_used_and_lists_the_fitted_detector(fitted, scenes, tmp_path):
    image, catalogue = scenes[1]
    result = write_detection_report(fitted, image, tmp_path, catalogue=catalogue, title="A <b>")
    text = result.html.read_text()
    assert "<title>A &lt;b&gt;</title>" in text and "$" not in text
    assert f"threshold <b>{fitted.threshold_:.4g}</b>" in text and "at or above" in text
    assert f"best F1 on {fitted.validation_['rows']} validation rows" in text
    saved = json.loads(result.metrics_json.read_text())
    assert saved["fitted"] == {
        "threshold_": fitted.threshold_,
        "diameter_calibration_": list(fitted.diameter_calibration_),
        "scales_": fitted.scales_.tolist(),
        "stride_": fitted.stride_,
        "training_counts_": fitted.training_counts_,
        "validation_": fitted.validation_,
    }
    assert saved["image"] == {"shape": [160, 160], "dtype": "uint8"}
    assert set(saved["timings_s"]) == {"predict", "score_map", "figures"}
    for name in ("validation_fraction", "positives_per_crater", "Flat"):  # parameters table
        assert f"<td>{name}</td>" in text
    assert "rim_or_floor" in text  # training windows table


def test_given_detections_are_used_without_predicting_again(fitted, scenes, tmp_path, monkeypatch):
    image, catalogue = scenes[1]
    found = fitted.predict(image)[0]
    monkeypatch.setattr(fitted, "predict", lambda images: pytest.fail("predicted again"))
    result = write_detection_report(
        fitted, image, tmp_path, catalogue=catalogue, detections=found, timings={"predict": 2.5}
    )
    assert result.metrics["n_detections"] == len(found)
    assert result.metrics["tp"] == match_craters(found, catalogue).tp
    assert json.loads(result.metrics_json.read_text())["timings_s"]["predict"] == 2.5
    # scores below the threshold: not what predict returns, so the page would be wrong
    lower = found.assign(score=found["score"] - fitted.threshold_)
    with pytest.raises(ValueError, match="below the detector's threshold"):
        write_detection_report(fitted, image, tmp_path / "low", detections=lower)
    assert not (tmp_path / "low").exists()


def test_without_a_catalogue_the_detections_and_the_score_map_only(fitted, scenes, tmp_path):
    image, _ = scenes[1]
    chosen = clone(fitted).set_params(threshold=0.6)
    chosen.__dict__.update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
    result = write_detection_report(chosen, image, tmp_path)
    assert sorted(result.figures) == ["detections", "score_map"] and result.match is None
    page = _parse(result)
    assert set(page.cards) == {"detections", "score threshold"}
    assert result.metrics == {"n_detections": len(chosen.predict(image)[0]), "threshold": 0.6}
    text = result.html.read_text()
    assert "No catalogue was given" in text and "the detector&#x27;s threshold parameter" in text
    assert (result.detections["score"] >= 0.6).all()


def test_refuses_to_overwrite_and_removes_a_stale_figure(fitted, scenes, tmp_path):
    image, catalogue = scenes[1]
    write_detection_report(fitted, image, tmp_path, catalogue=catalogue)
    (tmp_path / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(FileExistsError, match=r"report\.html, .* exist; pass overwrite=True"):
        write_detection_report(fitted, image, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    result = write_detection_report(fitted, image, tmp_path, overwrite=True)
    assert sorted(result.figures) == ["detections", "score_map"]
    assert not (tmp_path / "precision_recall.png").exists()  # not of this report
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def _arguments(change, fitted, scene, tmp_path):
    """The arguments of the call: the fitted detector on the scene, with ``change``'s values
    (the strings below standing for the objects they name)."""
    image, catalogue = scene
    named = {
        "colour image": np.repeat(image[..., None], 3, axis=-1),
        "two images": [image, image],
        "the catalogue": catalogue,
        "a file": tmp_path / "file",
    }
    args = {"detector": fitted, "image": image, "out_dir": tmp_path / "out", **change}
    return {k: named.get(v, v) if isinstance(v, str) else v for k, v in args.items()}


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (dict(detector=detector()), NotFittedError, "not fitted"),
        (dict(detector=LogisticRegression()), TypeError, "must be a fitted CraterDetector"),
        (dict(image="colour image"), ValueError, "colour image"),
        (dict(image="two images"), ValueError, "one 2-D image"),
        (dict(catalogue=[[500.0, 10.0, 12.0]]), ValueError, "outside the 160x160 image"),
        (dict(min_diameter=8), ValueError, "give a catalogue too"),
        (dict(catalogue="the catalogue", min_diameter=30, max_diameter=8), ValueError, "larger"),
        (dict(detections=[[10.0, 10.0, 12.0]]), ValueError, "'score' column"),
        (dict(timings=[1.0]), TypeError, "timings must be a dict"),
        (dict(title=None), TypeError, "title must be a string"),
        (dict(out_dir="a file"), FileExistsError, "is a file"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    fitted, scenes, tmp_path, change, error, match
):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(error, match=match):
        write_detection_report(**_arguments(change, fitted, scenes[1], tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert (tmp_path / "file").read_text() == "mine"


def test_without_matplotlib_it_says_what_to_install(fitted, scenes, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "skcrater\[plot\]"'):
        write_detection_report(fitted, scenes[1][0], tmp_path / "out")
    assert not (tmp_path / "out").exists()

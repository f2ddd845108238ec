"""skcrater.report: metrics, figures and the HTML report."""

import base64
import json
import sys
from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import TINY_CNN, make_blob_images
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
from sklearn.svm import LinearSVC

from skcrater import report
from skcrater.report import evaluate, write_report

pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiles():
    X, y = make_blob_images(n=60, side=16, random_state=3)
    # blur the classes a little so that there are mistakes to show
    rng = np.random.default_rng(0)
    flip = rng.random(y.size) < 0.15
    return X, np.where(flip, 1 - y, y)


@pytest.fixture(scope="module")
def logreg(tiles):
    X, y = tiles
    return LogisticRegression(C=1e-4, max_iter=500).fit(X, y)


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        self.links += [attrs[key] for key in ("src", "href") if key in attrs]


# --------------------------------------------------------------------- metrics
def test_evaluate_agrees_with_scikit_learn(logreg, tiles):
    X, y = tiles
    metrics = evaluate(logreg, X, y)
    y_pred = logreg.predict(X)
    scores = logreg.predict_proba(X)[:, 1]
    assert metrics["f1"] == pytest.approx(f1_score(y, y_pred))
    assert metrics["f1_macro"] == pytest.approx(f1_score(y, y_pred, average="macro"))
    assert metrics["precision"] == pytest.approx(precision_score(y, y_pred))
    assert metrics["recall"] == pytest.approx(recall_score(y, y_pred))
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, scores))
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    assert (tp, fp, fn, tn) == (
        np.sum((y == 1) & (y_pred == 1)),
        np.sum((y == 0) & (y_pred == 1)),
        np.sum((y == 1) & (y_pred == 0)),
        np.sum((y == 0) & (y_pred == 0)),
    )
    assert metrics["class_counts"] == np.bincount(y).tolist()
    assert json.loads(json.dumps(metrics)) == metrics


def test_best_threshold_is_the_best(logreg, tiles):
    X, y = tiles
    metrics = evaluate(logreg, X, y)
    curve = metrics["threshold_curve"]
    scores = logreg.predict_proba(X)[:, 1]
    assert metrics["best_f1"] == max(curve["f1"])
    at_best = f1_score(y, scores >= metrics["best_threshold"])
    assert metrics["best_f1"] == pytest.approx(at_best)
    assert metrics["best_f1"] >= metrics["f1"]
    for t, f1 in list(zip(curve["threshold"], curve["f1"], strict=True))[::7]:
        assert f1 == pytest.approx(f1_score(y, scores >= t))


def test_positive_class_is_classes_1(tiles):
    X, y = tiles
    labels = np.array(["crater", "plain"])[y]  # classes_[1] == "plain"
    est = LogisticRegression(max_iter=500).fit(X, labels)
    metrics = evaluate(est, X, labels)
    assert metrics["labels"] == ["crater", "plain"]
    assert metrics["f1"] == pytest.approx(f1_score(labels, est.predict(X), pos_label="plain"))


def test_scores_from_decision_function_and_single_class_y(tiles):
    X, y = tiles
    est = LinearSVC().fit(X / 255.0, y)
    metrics = evaluate(est, X / 255.0, y)
    assert metrics["log_loss"] is None
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, est.decision_function(X / 255.0)))
    one_class = evaluate(est, X[y == 1] / 255.0, y[y == 1])
    assert one_class["roc_auc"] is None and one_class["average_precision"] is None
    assert one_class["recall"] == pytest.approx(np.mean(est.predict(X[y == 1] / 255.0) == 1))


def test_evaluate_rejects_bad_input(logreg, tiles):
    X, y = tiles
    with pytest.raises(ValueError, match=r"labels \[7\]"):
        evaluate(logreg, X, np.where(y == 1, 7, 0))
    with pytest.raises(ValueError, match="binary"):
        evaluate(LogisticRegression().fit(X / 255.0, np.arange(len(y)) % 3), X / 255.0, y)
    with pytest.raises(ValueError, match="inconsistent"):
        evaluate(logreg, X, y[:-1])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        evaluate(LogisticRegression(), X, y)


# --------------------------------------------------------------------- figures
def test_example_grid_shows_mistakes_worst_first():
    X = np.zeros((8, 16), np.uint8)
    y_true = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    y_pred = np.array([1, 1, 0, 0, 0, 1, 1, 0])
    scores = np.array([0.6, 0.9, 0.1, 0.2, 0.4, 0.8, 0.7, 0.3])
    fig = report.plot_examples(X, y_true, y_pred, scores, n_per_row=3)
    rows = [[ax.get_title() for ax in fig.axes[r * 3 : r * 3 + 3]] for r in range(4)]
    assert rows[0] == ["p=0.80", "p=0.70", ""]  # true positives
    assert rows[1] == ["p=0.90", "p=0.60", ""]  # false positives, highest score first
    assert rows[2] == ["p=0.20", "p=0.40", ""]  # false negatives, lowest score first
    assert rows[3] == ["p=0.10", "p=0.30", ""]
    assert [fig.axes[r * 3].get_ylabel() for r in range(4)] == [
        "true positives",
        "false positives",
        "false negatives",
        "true negatives",
    ]


def test_learning_curve_marks_the_kept_epoch():
    fitted = SimpleNamespace(
        history_={"loss": [0.9, 0.6, 0.5, 0.45], "val_loss": [0.8, 0.55, 0.6, 0.7]}, best_epoch_=2
    )
    wrapped = SimpleNamespace(estimator_=fitted)
    ax = report.plot_learning_curve(wrapped).axes[0]
    curves = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(curves["validation loss"].get_ydata(), [0.8, 0.55, 0.6, 0.7])
    assert list(curves["kept epoch (2)"].get_xdata()) == [2, 2]
    with pytest.raises(ValueError, match="history_"):
        report.plot_learning_curve(LogisticRegression())


def test_pseudo_label_bars_stack_per_class():
    fitted = SimpleNamespace(pseudo_label_counts_=np.array([[3, 7], [0, 2]]), classes_=[0, 1])
    ax = report.plot_pseudo_labels(fitted).axes[0]
    heights = [patch.get_height() for patch in ax.patches]
    bottoms = [patch.get_y() for patch in ax.patches]
    assert heights == [3, 0, 7, 2]
    assert bottoms == [0, 0, 3, 0]


def test_threshold_figure_marks_best_and_current(logreg, tiles):
    X, y = tiles
    metrics = evaluate(logreg, X, y)
    fig = report.plot_threshold_f1(y, logreg.predict_proba(X)[:, 1], threshold=0.5)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert f"best F1 {metrics['best_f1']:.3f} at {metrics['best_threshold']:.3f}" in labels
    assert "threshold in use (0.5)" in labels


def test_without_matplotlib_metrics_work_and_figures_say_what_to_install(
    logreg, tiles, tmp_path, monkeypatch
):
    X, y = tiles
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert evaluate(logreg, X, y)["f1"] >= 0
    with pytest.raises(ImportError, match=r'pip install "skcrater\[plot\]"'):
        report.plot_confusion_matrix(y, y)
    with pytest.raises(ImportError, match=r"skcrater\[plot\]"):
        write_report(logreg, X, y, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- report
def _check_report(result):
    page = result.html.read_text()
    parser = _Images()
    parser.feed(page)
    embedded = {img["alt"]: img["src"] for img in parser.images}
    assert set(embedded) == set(result.figures)
    for name, src in embedded.items():
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        data = base64.b64decode(src[len(prefix) :], validate=True)
        assert data.startswith(PNG) and len(data) > 1000
        assert data == result.figures[name].read_bytes()
    assert not [link for link in parser.links if not link.startswith("data:")]
    return page


def test_write_report_for_a_plain_classifier(logreg, tiles, tmp_path):
    X, y = tiles
    result = write_report(logreg, X, y, tmp_path, title="Plain <LR>", timings={"fit": 1.25})
    assert sorted(result.figures) == [
        "confusion_matrix",
        "examples",
        "precision_recall",
        "threshold_f1",
    ]
    page = _check_report(result)
    assert "<title>Plain &lt;LR&gt;</title>" in page
    saved = json.loads(result.metrics_json.read_text())
    assert saved["metrics"] == evaluate(logreg, X, y) == result.metrics
    assert saved["data"]["shape"] == list(X.shape)
    assert saved["timings_s"]["fit"] == 1.25 and saved["timings_s"]["predict"] > 0
    assert f"{result.metrics['f1']:.4g}" in page
    assert "max_iter" in page  # the parameters table


def test_write_report_refuses_to_overwrite_and_removes_stale_figures(logreg, tiles, tmp_path):
    X, y = tiles
    X = X[:, :50]  # not square tiles: no example grid, a faster test
    logreg = clone(logreg).fit(X, y)
    with_rounds = clone(logreg).fit(X, y)
    with_rounds.pseudo_label_counts_ = np.array([[4, 6]])
    first = write_report(with_rounds, X, y, tmp_path)
    assert "pseudo_labels" in first.figures
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_report(logreg, X, y, tmp_path)
    second = write_report(logreg, X, y, tmp_path, overwrite=True)
    assert "pseudo_labels" not in second.figures
    assert not (tmp_path / "pseudo_labels.png").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.slow
def test_write_report_for_a_self_trained_cnn(tmp_path):
    from skcrater import CraterCNNClassifier, SelfTrainingWrapper

    X, y = make_blob_images(n=48, side=16, random_state=4)
    U, _ = make_blob_images(n=24, side=16, random_state=5)
    cnn = CraterCNNClassifier(**TINY_CNN, random_state=0)
    model = SelfTrainingWrapper(cnn, threshold=0.5, max_iter=1).fit(X, y, X_unlabeled=U)
    result = write_report(model, X, y, tmp_path)
    assert {"learning_curve", "pseudo_labels", "examples"} <= set(result.figures)
    _check_report(result)
    fitted = json.loads(result.metrics_json.read_text())["fitted"]
    assert fitted["n_iter_"] == model.n_iter_
    assert fitted["best_epoch_"] == model.estimator_.best_epoch_
    assert fitted["image_shape_"] == [16, 16]

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
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, make_scorer, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import FixedThresholdClassifier, TunedThresholdClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
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
        fit=None,  # an estimator, for the walk to go inside a wrapper's estimator_
        history_={"loss": [0.9, 0.6, 0.5, 0.45], "val_loss": [0.8, 0.55, 0.6, 0.7]},
        best_epoch_=2,
    )
    wrapped = SimpleNamespace(estimator_=fitted)
    ax = report.plot_learning_curve(wrapped).axes[0]
    curves = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(curves["validation loss"].get_ydata(), [0.8, 0.55, 0.6, 0.7])
    assert list(curves["kept epoch (2)"].get_xdata()) == [2, 2]
    with pytest.raises(ValueError, match="history_"):
        report.plot_learning_curve(LogisticRegression())


def test_learning_curve_shows_the_accuracies_when_recorded():
    history = {"loss": [0.9, 0.6, 0.5], "val_loss": [0.8, 0.55, 0.6]}
    fitted = SimpleNamespace(history_=dict(history), best_epoch_=2)
    assert len(report.plot_learning_curve(fitted).axes) == 1  # no accuracy, no second axis
    fitted.history_ |= {"accuracy": [0.6, 0.7, 0.8], "val_accuracy": [0.55, 0.7, 0.65]}
    fig = report.plot_learning_curve(fitted)
    loss, accuracy = fig.axes
    curves = {line.get_label(): line for line in accuracy.get_lines()}
    assert sorted(curves) == ["training accuracy", "validation accuracy"]
    np.testing.assert_array_equal(curves["validation accuracy"].get_ydata(), [0.55, 0.7, 0.65])
    np.testing.assert_array_equal(curves["validation accuracy"].get_xdata(), [1, 2, 3])
    assert accuracy.get_ylabel().startswith("Accuracy")
    assert "validation accuracy" in [text.get_text() for text in loss.get_legend().get_texts()]
    # the colour of each accuracy is that of the matching loss
    losses = {line.get_label(): line.get_color() for line in loss.get_lines()}
    assert curves["validation accuracy"].get_color() == losses["validation loss"]


def test_learning_curve_prefers_f1_to_accuracy():
    history = {"loss": [0.9, 0.6], "accuracy": [0.8, 0.8], "val_accuracy": [0.8, 0.8]}
    history |= {"f1": [0.1, 0.4], "val_f1": [0.2, 0.5]}
    _, metric = report.plot_learning_curve(SimpleNamespace(history_=history)).axes
    curves = {line.get_label(): line for line in metric.get_lines()}
    assert sorted(curves) == ["training F1", "validation F1"]
    np.testing.assert_array_equal(curves["validation F1"].get_ydata(), [0.2, 0.5])
    assert metric.get_ylabel().startswith("F1")


def test_confusion_matrix_shows_row_percentages_and_class_names():
    y_true = np.array([0] * 240 + [1] * 60)
    y_pred = np.array([0] * 228 + [1] * 12 + [0] * 15 + [1] * 45)
    ax = report.plot_confusion_matrix(y_true, y_pred, labels=[0, 1]).axes[0]
    assert [text.get_text() for text in ax.texts] == ["228\n95%", "12\n5%", "15\n25%", "45\n75%"]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["no crater", "crater"]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["no crater", "crater"]
    # other labels are shown as they are; a true class without tiles has no percentage
    named = report.plot_confusion_matrix(
        ["rim", "rim", "rim"], ["rim", "flat", "rim"], labels=["flat", "rim"]
    ).axes[0]
    assert [text.get_text() for text in named.texts] == ["0\nn/a", "0\nn/a", "1\n33%", "2\n67%"]
    assert [tick.get_text() for tick in named.get_yticklabels()] == ["flat", "rim"]


def test_score_histogram_has_one_histogram_per_true_class_and_the_threshold():
    rng = np.random.default_rng(0)
    y_true = np.array([0] * 70 + [1] * 30)
    # a network whose scores bottom out at 0.45
    scores = np.where(y_true == 1, 0.7, 0.45) + 0.25 * rng.random(100)
    ax = report.plot_score_histogram(y_true, scores, threshold=0.5).axes[0]
    histograms = ax.patches
    assert [patch.get_label() for patch in histograms] == [
        "true no crater (70)",
        "true crater (30)",
    ]
    expected = [np.histogram(scores[y_true == c], bins=20, range=(0, 1))[0] for c in (0, 1)]
    for patch, counts in zip(histograms, expected, strict=True):
        x, height = patch.get_xy().T
        assert x.min() == 0 and x.max() == 1
        assert height.max() == counts.max()
        # the step rises to each bin's count at the bin's left edge
        left = np.linspace(0, 1, 21)[:-1][counts > 0]
        assert {round(v, 6) for v in x[height > 0]} >= {round(v, 6) for v in left}
    # nothing below 0.45 is visible: no bar starts left of it
    assert min(p.get_xy()[p.get_xy()[:, 1] > 0, 0].min() for p in histograms) >= 0.45 - 1e-9
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["threshold in use (0.5)"].get_xdata()) == [0.5, 0.5]
    assert ax.get_xlim() == (0.0, 1.0)
    unmarked = report.plot_score_histogram(y_true, scores).axes[0]
    assert not unmarked.get_lines() and len(unmarked.patches) == 2
    # a decision function is binned on its own range
    spread = report.plot_score_histogram(y_true, 4 * scores - 2, threshold=0.0).axes[0]
    assert spread.patches[0].get_xy()[:, 0].min() == pytest.approx(4 * scores.min() - 2)


def test_the_report_draws_the_score_histogram_with_the_threshold_in_force(tiles, tmp_path):
    X, y = tiles
    X = X[:, :50] / 255.0  # not square tiles: no example grid, a faster test
    fixed = FixedThresholdClassifier(LogisticRegression(), threshold=0.3).fit(X, y)
    figures = report._figures(fixed, X, report._predict(fixed, X, y))
    ax = figures["score_histogram"].axes[0]
    assert len(ax.patches) == 2
    assert "threshold in use (0.3)" in [line.get_label() for line in ax.get_lines()]
    result = write_report(fixed, X, y, tmp_path)
    assert result.figures["score_histogram"] == tmp_path / "score_histogram.png"
    page = _check_report(result)
    assert 'id="score_histogram"' in page and report._CAPTIONS["score_histogram"] in page


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


# ------------------------------------------------------ threshold in force
def _scores(estimator, X):
    """The report's score axis: p(class 1), or the decision function without probabilities."""
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(X)[:, 1]
    return estimator.decision_function(X)


def _assert_in_force(estimator, X, threshold):
    """predict gives classes_[1] exactly where the report's score reaches the threshold."""
    positive = estimator.predict(X) == estimator.classes_[1]
    assert 0 < positive.sum() < len(X)  # the threshold separates something
    np.testing.assert_array_equal(positive, _scores(estimator, X) >= threshold)


def _fixed(threshold=0.3, **kwargs):
    return FixedThresholdClassifier(LogisticRegression(), threshold=threshold, **kwargs)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: _fixed(0.3), 0.3),
        (lambda: _fixed("auto"), 0.5),
        # thresholded on p(class 0): classes_[1] where p(class 1) > 1 - 0.3
        (lambda: _fixed(0.3, pos_label=0), 0.7),
        (lambda: make_pipeline(StandardScaler(), _fixed(0.6)), 0.6),
        (lambda: make_pipeline(FunctionTransformer(), make_pipeline(_fixed(0.6))), 0.6),
        (lambda: _fixed(0.6, response_method="predict_proba"), 0.6),
        # on the decision function's axis when the scores are decision functions
        (lambda: FixedThresholdClassifier(LinearSVC(), threshold=0.2), 0.2),
        (lambda: FixedThresholdClassifier(LinearSVC(), threshold=0.2, pos_label=0), -0.2),
        # the outermost threshold classifier decides
        (lambda: FixedThresholdClassifier(_fixed(0.3), threshold=0.6), 0.6),
    ],
)
def test_threshold_of_fixed_threshold_classifiers(tiles, make, expected):
    X, y = tiles
    X = X / 255.0
    estimator = make().fit(X, y)
    assert report._decision_threshold(estimator) == pytest.approx(expected)
    _assert_in_force(estimator, X, expected)


def test_threshold_of_tuned_threshold_classifier(tiles):
    X, y = tiles
    X = X / 255.0
    tuned = TunedThresholdClassifierCV(LogisticRegression(), cv=3).fit(X, y)
    assert report._decision_threshold(tuned) == tuned.best_threshold_
    _assert_in_force(tuned, X, tuned.best_threshold_)
    # the scorer's positive label is class 0: thresholded on p(class 0)
    scoring = make_scorer(f1_score, pos_label=0)
    flipped = TunedThresholdClassifierCV(LogisticRegression(), scoring=scoring, cv=3).fit(X, y)
    assert report._decision_threshold(flipped) == pytest.approx(1 - flipped.best_threshold_)


def test_no_threshold_where_none_is_known_or_convertible(tiles):
    from skcrater import SelfTrainingWrapper

    X, y = tiles
    X = X / 255.0
    assert report._decision_threshold(LogisticRegression().fit(X, y)) is None
    # a decision-function threshold has no general conversion to a probability
    on_decision = _fixed(0.2, response_method="decision_function").fit(X, y)
    assert report._decision_threshold(on_decision) is None
    # the wrapper's own threshold selects pseudo-labels, it is not a decision threshold
    wrapped = SelfTrainingWrapper(LogisticRegression(), threshold=0.9, max_iter=1)
    y_semi = np.where(np.arange(len(y)) % 3 == 0, -1, y)
    assert report._decision_threshold(wrapped.fit(X, y_semi)) is None
    assert report._decision_threshold(SelfTrainingWrapper(_fixed(0.3)).fit(X, y_semi)) == 0.3


def test_threshold_of_a_search_is_its_best_threshold(tiles):
    pytest.importorskip("optuna")
    from optuna.distributions import FloatDistribution

    from skcrater import OptunaSearch

    X, y = tiles
    X = X / 255.0
    space = {"C": FloatDistribution(1e-2, 1e2, log=True)}
    search = OptunaSearch(LogisticRegression(), space, cv=3, n_trials=2, random_state=0)
    search.fit(X, y)
    assert isinstance(search.best_estimator_, FixedThresholdClassifier)
    assert report._decision_threshold(search) == search.best_threshold_
    fitted = report._fitted_summary(search)
    assert fitted["decision_threshold"] == search.best_threshold_


@pytest.fixture(scope="module")
def cnn():
    """A tiny CNN fitted once, with a decision threshold that is not 0.5."""
    from skcrater import CraterCNNClassifier

    X, y = make_blob_images(n=48, side=16, random_state=4)
    return CraterCNNClassifier(**TINY_CNN, threshold=0.4, random_state=0).fit(X, y)


@pytest.mark.slow
def test_threshold_of_a_cnn_through_pipelines_and_wrappers(cnn):
    from skcrater import SelfTrainingWrapper

    X, y = make_blob_images(n=48, side=16, random_state=4)
    frozen = FrozenEstimator(cnn)  # fitting it again changes nothing
    y_semi = np.where(np.arange(len(y)) % 3 == 0, -1, y)
    cases = {
        0.4: [
            cnn,
            make_pipeline(FunctionTransformer(), frozen).fit(X, y),
            SelfTrainingWrapper(frozen, threshold=0.9, max_iter=1).fit(X, y_semi),
            make_pipeline(SelfTrainingWrapper(frozen, max_iter=1)).fit(X, y_semi),
        ],
        0.7: [
            FixedThresholdClassifier(frozen, threshold=0.7).fit(X, y),
            SelfTrainingWrapper(FixedThresholdClassifier(frozen, threshold=0.7)).fit(X, y_semi),
        ],
    }
    for expected, estimators in cases.items():
        for estimator in estimators:
            assert report._decision_threshold(estimator) == pytest.approx(expected)
            np.testing.assert_array_equal(
                estimator.predict(X) == 1, _scores(estimator, X) >= expected
            )
    figure = report._figures(cases[0.7][0], X, report._predict(cases[0.7][0], X, y))
    labels = [line.get_label() for line in figure["threshold_f1"].axes[0].get_lines()]
    assert "threshold in use (0.7)" in labels


@pytest.mark.slow
def test_threshold_of_a_cnn_search_is_the_tuned_one():
    pytest.importorskip("optuna")
    from optuna.distributions import FloatDistribution

    from skcrater import CraterCNNClassifier, OptunaSearch

    X, y = make_blob_images(n=48, side=16, random_state=4)
    space = {"learning_rate": FloatDistribution(1e-3, 3e-2, log=True)}
    cnn = CraterCNNClassifier(**TINY_CNN, random_state=0)
    search = OptunaSearch(cnn, space, cv=2, n_trials=1, thresholds=10, random_state=0)
    search.fit(X, y)
    assert search.best_estimator_.threshold == search.best_threshold_
    assert report._decision_threshold(search) == search.best_threshold_


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
        "score_histogram",
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
    # the CNN records its F1: drawn against the learning curve's second axis
    assert {"loss", "f1", "val_f1"} <= set(model.estimator_.history_)
    f1 = report.plot_learning_curve(model).axes[1]
    assert "training F1" in [line.get_label() for line in f1.get_lines()]
    fitted = json.loads(result.metrics_json.read_text())["fitted"]
    assert fitted["n_iter_"] == model.n_iter_
    assert fitted["best_epoch_"] == model.estimator_.best_epoch_
    assert fitted["image_shape_"] == [16, 16]


# ------------------------------------------------------- page template and writer
def _stub_class():
    from sklearn.base import BaseEstimator

    class _Stub(BaseEstimator):
        """An estimator whose parameters do not change with scikit-learn's version."""

        def __init__(self, alpha=0.5, inner=None):
            self.alpha, self.inner = alpha, inner

    return _Stub


_FIXED_INFO = {
    "title": "Fixed <report> & co",
    "created": "2026-01-01T00:00:00+00:00",
    "estimator": "Stub",
    "data": {"shape": [4, 16], "dtype": "uint8", "n_samples": 4, "class_counts": {"0": 2, "1": 2}},
    "fitted": {"classes_": [0, 1], "n_iter_": [7]},
    "timings_s": {"fit": 1.5, "predict": 0.01},
    "versions": {"skcrater": "0.1", "numpy": "2.0"},
    "metrics": {
        **dict(f1=0.5, f1_macro=0.5, precision=1.0, recall=1 / 3, accuracy=0.75, roc_auc=None),
        **dict(average_precision=float("nan"), log_loss=0.3, best_f1=0.8, best_threshold=0.4),
        **dict(balanced_accuracy=0.7, labels=[0, 1], confusion_matrix=[[2, 0], [1, 1]]),
    },
}


class _Outline(HTMLParser):
    """Sections, figures and headings in page order; the visible text outside <style>."""

    def __init__(self):
        super().__init__()
        self.outline, self.text, self.style, self._open = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self._open = tag
        if tag in ("section", "figure"):
            self.outline.append((tag, dict(attrs)["id"]))

    def handle_endtag(self, tag):
        self._open = None

    def handle_data(self, data):
        if self._open == "style":
            self.style.append(data)
        elif data.strip():
            self.text.append(" ".join(data.split()))
            if self._open in ("h1", "h2", "h3"):
                self.outline.append((self._open, data))


def test_page_from_the_template_has_the_content_of_the_page_before_it():
    """The page filled in from ``templates/report.html`` says what the f-string page said.

    The checksum is of the visible text of this fixed page as rendered by the
    f-string code that the template replaced (commit 89cda87), so moving the
    HTML into package data is proven to change no content; a deliberate change
    of the page's content updates it. Markup and CSS may change freely.
    Updated for issue 15: the captions of the confusion matrix and the learning
    curve and the new score histogram's caption are the only changes of text.
    """
    import hashlib
    from importlib.resources import files

    figures = {name: PNG + name.encode() for name in report.FIGURES}
    stub = _stub_class()
    page = report._html(stub(inner=stub(alpha=2)), _FIXED_INFO, figures)
    parsed = _Outline()
    parsed.feed(page)
    assert parsed.outline == [
        ("h1", "Fixed <report> & co"),
        ("section", "metrics"),
        ("h2", "Metrics"),
        ("section", "figures"),
        ("h2", "Figures"),
        *(("figure", name) for name in report.FIGURES),
        ("section", "details"),
        ("h2", "Details"),
        *(("h3", name) for name in ("Confusion matrix", "All metrics", "Data", "Timings (s)")),
        ("h3", "Fitted"),
        ("h3", "Parameters"),
    ]
    digest = hashlib.sha256("\n".join(parsed.text).encode()).hexdigest()
    assert digest == "0ca57be75b1ff3085ea51203d40df5ff61df6bf5e0cc95bd44a43216601b17ef"
    images = _Images()
    images.feed(page)
    embedded = {img["alt"]: base64.b64decode(img["src"].split(",", 1)[1]) for img in images.images}
    assert embedded == figures
    css = (files("skcrater") / "templates" / "report.css").read_text(encoding="utf-8")
    assert "".join(parsed.style).strip() == css.strip() and "figcaption{" in css
    assert "$" not in page  # every field of the template was filled in


def test_templates_are_found_in_an_installed_wheel(tmp_path):
    """Build a wheel of the source tree, unpack it as site-packages do, render a page from it."""
    import os
    import shutil
    import subprocess
    import zipfile
    from pathlib import Path

    pytest.importorskip("setuptools.build_meta")
    root = Path(report.__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():
        pytest.skip("skcrater is not run from its source tree")
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(root / "skcrater", source / "skcrater", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    build = "from setuptools import build_meta; print(build_meta.build_wheel('../dist'))"
    run = dict(capture_output=True, text=True, check=True)
    wheel = subprocess.run([sys.executable, "-c", build], cwd=source, **run).stdout.split()[-1]
    site = tmp_path / "site"
    with zipfile.ZipFile(tmp_path / "dist" / wheel) as archive:
        assert {"skcrater/templates/report.html", "skcrater/templates/report.css"} <= set(
            archive.namelist()
        )
        archive.extractall(site)
    render = (
        "import sys, skcrater.report as r\n"
        "info = {'title': 'T', 'created': 'now', 'estimator': 'E', 'fitted': {}, 'timings_s': {},"
        " 'versions': {}, 'data': {'n_samples': 1, 'shape': [1], 'dtype': 'u1',"
        " 'class_counts': {}}, 'metrics': dict.fromkeys([k for k, _ in r._CARDS]"
        " + ['balanced_accuracy'], 0.5) | {'labels': [0, 1], 'confusion_matrix': [[1, 0], [0, 1]]}}"
        "\nclass E:\n    get_params = lambda self, deep=True: {}\n"
        "print(r.__file__); print(r._html(E(), info, {}))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", render], cwd=tmp_path, env=env, **run).stdout
    assert Path(out.splitlines()[0]).is_relative_to(site)  # not the source tree
    assert '<section id="figures">' in out and "figcaption{" in out


def test_write_report_writes_every_file_through_the_atomic_writer(
    logreg, tiles, tmp_path, monkeypatch
):
    import os

    X, y = tiles
    X = X[:, :50]  # not square tiles: no example grid, a faster test
    logreg = clone(logreg).fit(X, y)
    # a file of the user's that a fixed temporary name (".report.html.part") would destroy
    (tmp_path / ".report.html.part").write_text("mine")
    synced = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or fsync(fd))
    result = write_report(logreg, X, y, tmp_path)
    assert len(synced) == 2 + len(result.figures)  # report.html, metrics.json, the PNGs
    assert (tmp_path / ".report.html.part").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [
        ".report.html.part"
    ]
    with pytest.raises(FileExistsError, match=r"report\.html, .*metrics\.json, .* exist; pass"):
        write_report(logreg, X, y, tmp_path)


def test_write_report_scores_given_proba_and_shows_provenance(tmp_path):
    X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
    clf = LogisticRegression().fit(X, y)
    # out-of-fold probabilities that disagree with clf: they, not clf, are scored
    proba = np.array([[0.2, 0.8], [0.9, 0.1], [0.3, 0.7], [0.4, 0.6]])
    provenance = {"scored": "cross-validated, 2 folds", "warning": "not <held> out"}
    result = write_report(clf, X, y, tmp_path / "a", proba=proba, provenance=provenance)
    assert result.metrics["confusion_matrix"] == [[1, 1], [0, 2]]
    page = result.html.read_text()
    assert 'class="warning"' in page and "not &lt;held&gt; out" in page
    assert "cross-validated, 2 folds" in page
    assert json.loads(result.metrics_json.read_text())["provenance"] == provenance
    plain = write_report(clf, X, y, tmp_path / "b").html.read_text()
    assert "Provenance" not in plain and 'class="warning"' not in plain
    with pytest.raises(ValueError, match="shape"):
        write_report(clf, X, y, tmp_path / "c", proba=proba[:3])

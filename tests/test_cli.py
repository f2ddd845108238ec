"""Tests of the ``skcrater`` command line, end to end on tiny synthetic data."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CNN

from skcrater.cli import main
from skcrater.datasets import make_craters

TINY_ARGS = ["--epochs", "2", "--batch-size", "16", "--random-state", "0"]


@pytest.fixture
def course_dir(tmp_path):
    """A course-layout folder of 16x16 synthetic tiles."""
    X, y, pool = make_craters(60, image_size=16, n_unlabeled=30, random_state=0)
    folder = tmp_path / "data"
    folder.mkdir()
    np.save(folder / "Xtrain1.npy", X)
    np.save(folder / "Ytrain1.npy", y)
    np.save(folder / "Xtrain1_extra.npy", pool)
    np.save(folder / "Xtest1.npy", pool[:12])
    return folder


@pytest.fixture
def tiny_recipe(monkeypatch):
    """Make the CLI's classifier tiny so that the recipe's network trains in a second."""
    from skcrater import cli

    original = cli._make_classifier

    def small(args, **defaults):
        return original(args, **defaults).set_params(
            **{k: v for k, v in TINY_CNN.items() if k not in ("epochs", "batch_size")}
        )

    monkeypatch.setattr(cli, "_make_classifier", small)


def test_help_is_fast_and_does_not_load_tensorflow():
    code = (
        "import sys\n"
        "from skcrater.cli import build_parser\n"
        "build_parser().format_help()\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    out = subprocess.run(
        [sys.executable, "-m", "skcrater.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("demo", "train", "predict", "report", "tune"):
        assert command in out


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["train", "--data", "x"])
    assert excinfo.value.code == 2
    assert "--model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--threshold", "1.5"])


@pytest.mark.slow
def test_demo_prints_metrics_and_writes_report(tmp_path, capsys, tiny_recipe):
    out = tmp_path / "demo"
    code = main(["demo", "--n-samples", "80", "--image-size", "16", "--out", str(out), *TINY_ARGS])
    assert code == 0
    printed = capsys.readouterr().out
    for word in ("f1", "precision", "recall", "accuracy", "confusion matrix"):
        assert word in printed
    saved = json.loads((out / "metrics.json").read_text())
    metrics = saved["metrics"]
    assert 0 <= metrics["f1"] <= 1
    assert np.sum(metrics["confusion_matrix"]) == 20  # the 25% test split of 80 tiles
    # both presets on the same split, side by side; the report is the recommended one's
    assert list(saved["comparison"]) == ["recommended()", "recipe"]
    assert saved["comparison"]["recommended()"]["f1"] == pytest.approx(metrics["f1"])
    for name in ("recommended()", "recipe"):
        assert re.search(rf"\n  {re.escape(name)} +(\d\.\d{{3}} +){{4}}2 +\d+\.\d\n", printed)
    html = (out / "report.html").read_text()
    assert '<section id="comparison">' in html and "<td>recipe</td>" in html


def test_train_then_predict_round_trip(course_dir, tmp_path, capsys, tiny_recipe):
    model = tmp_path / "model.skcrater"
    assert main(["train", "--data", str(course_dir), "--model", str(model), *TINY_ARGS]) == 0
    assert model.is_file()
    output = tmp_path / "y_pred.npy"
    args = ["predict", "--model", str(model), "--input", str(course_dir / "Xtest1.npy")]
    assert main([*args, "--output", str(output)]) == 0
    y_pred = np.load(output)
    assert y_pred.shape == (12,) and y_pred.dtype.kind == "i"
    assert set(np.unique(y_pred)) <= {0, 1}

    # the saved model predicts exactly what the CLI wrote
    from skcrater.persistence import load

    np.testing.assert_array_equal(load(model).predict(np.load(course_dir / "Xtest1.npy")), y_pred)

    # neither the model nor the predictions are overwritten unless asked
    assert main([*args, "--output", str(output)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["train", "--data", str(course_dir), "--model", str(model), *TINY_ARGS]) == 2
    assert main([*args, "--output", str(output), "--overwrite"]) == 0

    out = tmp_path / "report"
    report = ["report", "--model", str(model), "--data", str(course_dir)]
    assert main([*report, "--out", str(out)]) == 0
    info = json.loads((out / "metrics.json").read_text())
    assert info["metrics"]["n_samples"] == 60
    assert info["timings_s"]["fit"] > 0  # the fit time saved with the model by `train`


@pytest.mark.slow
def test_train_with_self_training(course_dir, tmp_path, tiny_recipe):
    model = tmp_path / "st.skcrater"
    args = ["train", "--data", str(course_dir), "--model", str(model), *TINY_ARGS]
    assert main([*args, "--pseudo-label-threshold", "0.6", "--use-test-pool"]) == 0
    from skcrater.persistence import load

    loaded = load(model)
    assert type(loaded).__name__ == "SelfTrainingWrapper"
    assert loaded.transduction_.shape == (60 + 30 + 12,)


def test_missing_inputs_are_reported(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope"), "--model", str(tmp_path / "m")]) == 2
    assert "nope" in capsys.readouterr().err
    argv = ["predict", "--model", "m", "--input", str(tmp_path / "X.npy"), "--output", "o.npy"]
    assert main(argv) == 2  # a usage error like any other, not SystemExit's status 1
    assert "input file not found" in capsys.readouterr().err


def test_recommended_flag_starts_from_the_preset_and_keeps_overrides():
    from skcrater import CraterCNNClassifier, cli

    argv = ["train", "--data", "d", "--model", "m.skcrater", "--epochs", "3"]
    preset = CraterCNNClassifier.recommended().get_params()
    chosen = cli._make_classifier(cli.build_parser().parse_args([*argv, "--recommended"]))
    params = chosen.get_params()
    params.pop("verbose")  # follows whether stdout is a terminal
    preset.pop("verbose")
    assert params == {**preset, "epochs": 3, "random_state": 0}
    recipe = cli._make_classifier(cli.build_parser().parse_args([*argv, "--recipe"]))
    assert recipe.conv_filters == CraterCNNClassifier().conv_filters


# ------------------------------------------------------------------ detection
@pytest.fixture
def scene_files(tmp_path):
    """Two small synthetic scenes as PGM images with CSV catalogues."""
    from PIL import Image

    from skcrater.datasets import make_crater_scene

    files = []
    for seed in (0, 1):
        image, catalogue = make_crater_scene(
            200, n_craters=40, diameter_range=(6, 40), random_state=seed
        )
        Image.fromarray(image).save(tmp_path / f"scene{seed}.pgm")
        catalogue.to_csv(tmp_path / f"scene{seed}.csv", index=False, header=False)
        files.append((tmp_path / f"scene{seed}.pgm", tmp_path / f"scene{seed}.csv"))
    return files


DETECTOR_ARGS = ["--window", "40", "--diameter-range", "12", "30", "--max-diameter", "50"]


def test_fit_detector_then_detect_with_a_catalogue(scene_files, tmp_path, capsys):
    import pandas as pd

    (image, catalogue), (other, other_catalogue) = scene_files
    model = tmp_path / "det.skcrater"
    args = ["fit-detector", "--image", str(image), "--catalogue", str(catalogue)]
    assert main([*args, "--model", str(model), *DETECTOR_ARGS, "--epochs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "detector saved" in printed
    # 200 rows: the last 40 choose the threshold and calibrate the diameters
    assert "chosen on 40 held-out rows" in printed and "before calibration" in printed
    out, overlay = tmp_path / "craters.csv", tmp_path / "overlay.png"
    detect = ["detect", "--model", str(model), "--image", str(other), "--out", str(out)]
    extra = ["--overlay", str(overlay), "--catalogue", str(other_catalogue), "--threshold", "0.3"]
    assert main([*detect, *extra]) == 0
    printed = capsys.readouterr().out
    assert "precision" in printed and "recall" in printed and "F1" in printed
    table = pd.read_csv(out)
    assert list(table.columns) == ["x", "y", "diameter", "score"]
    assert (table["score"] >= 0.3).all()
    assert overlay.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # outputs are not replaced without --overwrite, and nothing is scanned before refusing
    assert main(detect) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_fit_detector_trains_a_vote_of_networks_that_detect_scans(scene_files, tmp_path, capsys):
    from skcrater import load

    (image, catalogue), (other, _) = scene_files
    model = tmp_path / "vote.skcrater"
    args = ["fit-detector", "--image", str(image), "--catalogue", str(catalogue)]
    extra = ["--epochs", "1", "--networks", "2", "--random-state", "5"]
    assert main([*args, "--model", str(model), *DETECTOR_ARGS, *extra]) == 0
    vote = load(model).estimator_
    assert [voter.random_state for voter in vote.estimators_] == [5, 6]
    assert vote.voting == "soft" and len({id(v.model_) for v in vote.estimators_}) == 2
    out = tmp_path / "craters.csv"
    assert main(["detect", "--model", str(model), "--image", str(other), "--out", str(out)]) == 0
    assert out.read_text().startswith("x,y,diameter,score")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*args, "--model", str(tmp_path / "m"), "--networks", "0"])
    assert "--networks: must be a positive integer" in capsys.readouterr().err


def test_fit_detector_refuses_before_training(scene_files, tmp_path, capsys):
    (image, catalogue), _ = scene_files
    base = ["fit-detector", "--image", str(image), "--catalogue", str(catalogue)]
    assert main([*base, "--catalogue", str(catalogue), "--model", str(tmp_path / "m")]) == 2
    assert "one catalogue per image" in capsys.readouterr().err
    assert main([*base, "--model", str(tmp_path / "missing" / "m.skcrater")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*base, "--model", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y,diameter\n10,10,-4\n")
    args = ["fit-detector", "--image", str(image), "--catalogue", str(bad)]
    assert main([*args, "--model", str(tmp_path / "m.skcrater")]) == 2
    assert "non-positive diameter" in capsys.readouterr().err


def test_detect_refuses_a_model_that_is_not_a_detector(tmp_path, capsys):
    from sklearn.preprocessing import StandardScaler

    from skcrater import save

    model = save(StandardScaler().fit([[0.0], [1.0]]), tmp_path / "scaler.skcrater")
    image = tmp_path / "image.png"
    from PIL import Image

    Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).save(image)
    args = ["detect", "--model", str(model), "--image", str(image), "--out", str(tmp_path / "c")]
    assert main(args) == 2
    assert "not a CraterDetector" in capsys.readouterr().err


def test_detect_writes_a_report_of_the_craters_it_found(scene_files, tmp_path, capsys, monkeypatch):
    import pandas as pd

    from skcrater import CraterCNNClassifier, save
    from skcrater.detection import CraterDetector, match_craters, read_catalogue, read_image

    (image, catalogue), (other, other_catalogue) = scene_files
    cnn = CraterCNNClassifier(**{**TINY_CNN, "epochs": 1}, random_state=0)
    detector = CraterDetector(cnn, window=24, diameter_range=(8, 20), max_diameter=40)
    model = save(detector.fit(image, catalogue), tmp_path / "det.skcrater")
    scans = []
    predict = CraterDetector.predict
    monkeypatch.setattr(CraterDetector, "predict", lambda *a: scans.append(1) or predict(*a))
    out, report = tmp_path / "craters.csv", tmp_path / "report"
    detect = ["detect", "--model", str(model), "--image", str(other), "--report", str(report)]
    scored = ["--catalogue", str(other_catalogue), "--min-diameter", "8"]
    assert main([*detect, "--out", str(out), *scored]) == 0
    assert f"report written: {report / 'report.html'}" in capsys.readouterr().out
    assert len(scans) == 1  # the report shows the craters found, not a second scan
    assert sorted(p.name for p in report.glob("*.png")) == [
        "detections.png",
        "precision_recall.png",
        "score_map.png",
    ]
    metrics = json.loads((report / "metrics.json").read_text())["metrics"]
    found = pd.read_csv(out)
    truth = read_catalogue(other_catalogue, image_shape=read_image(other).shape)
    assert metrics["n_detections"] == len(found)
    assert metrics["tp"] == match_craters(found, truth, min_diameter=8).tp
    # an earlier report is refused before the image is scanned
    again = [*detect, "--out", str(tmp_path / "again.csv")]
    assert main(again) == 2
    assert "--overwrite" in capsys.readouterr().err and len(scans) == 1
    assert main([*again, "--overwrite"]) == 0 and len(scans) == 2
    assert not (report / "precision_recall.png").exists()  # no catalogue this time


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/missing/s.db", "sqlit:///{tmp}/s.db"])
def test_tune_refuses_an_unusable_storage_in_one_line(course_dir, tmp_path, capsys, url):
    url = url.format(tmp=tmp_path)
    argv = ["tune", "--data", str(course_dir), "--n-trials", "1", "--storage", url]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"skcrater tune: error: Cannot use the Optuna storage {url!r}: ")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "Epoch" not in out  # refused before any training


# --- report: honest evaluation (issue 15)
def _train_model(course_dir, tmp_path):
    model = tmp_path / "model.skcrater"
    assert main(["train", "--data", str(course_dir), "--model", str(model), *TINY_ARGS]) == 0
    return model


def _report(monkeypatch, *argv):
    """Run ``skcrater report`` as if typed, so that the page can quote the command."""
    monkeypatch.setattr(sys, "argv", ["skcrater", "report", *argv])
    return main(["report", *argv])


def test_report_on_training_tiles_warns(course_dir, tmp_path, capsys, monkeypatch, tiny_recipe):
    model, out = _train_model(course_dir, tmp_path), tmp_path / "report"
    assert (
        _report(monkeypatch, "--model", str(model), "--data", str(course_dir), "--out", str(out))
        == 0
    )
    assert "WARNING: these are the training tiles" in capsys.readouterr().err
    page = (out / "report.html").read_text()
    assert 'class="warning"' in page
    assert "these are the training tiles: the scores are not held out" in page
    saved = json.loads((out / "metrics.json").read_text())["provenance"]
    assert saved["scored"] == "training tiles (not held out)"


def test_report_test_data_is_held_out_with_provenance(
    course_dir, tmp_path, capsys, monkeypatch, tiny_recipe
):
    from skcrater.cli import _sha256

    model, out = _train_model(course_dir, tmp_path), tmp_path / "report"
    X, y = make_craters(24, image_size=16, random_state=1)
    np.save(tmp_path / "Xheld.npy", X)
    np.save(tmp_path / "Yheld.npy", y)
    argv = ["--model", str(model), "--test-data", str(tmp_path / "Xheld.npy"), "--out", str(out)]
    assert _report(monkeypatch, *argv) == 0
    assert "WARNING" not in capsys.readouterr().err
    page = (out / "report.html").read_text()
    assert "held out" in page and 'class="warning"' not in page
    assert "Xheld.npy" in page and "Yheld.npy" in page and "24 tiles" in page
    assert _sha256(X, y)[:12] in page
    assert "skcrater report --model" in page and "--test-data" in page
    assert json.loads((out / "metrics.json").read_text())["metrics"]["n_samples"] == 24


def test_report_cv_cross_validates(course_dir, tmp_path, capsys, monkeypatch, tiny_recipe):
    model, out = _train_model(course_dir, tmp_path), tmp_path / "report"
    np.save(tmp_path / "groups.npy", np.arange(60) % 6)
    argv = ["--model", str(model), "--data", str(course_dir), "--out", str(out), "--cv", "3"]
    assert _report(monkeypatch, *argv, "--groups", str(tmp_path / "groups.npy")) == 0
    assert "WARNING" not in capsys.readouterr().err  # refitted clones: honest scores
    page = (out / "report.html").read_text()
    assert "cross-validated, 3 folds (StratifiedGroupKFold)" in page
    assert "groups.npy" in page and 'class="warning"' not in page
    assert json.loads((out / "metrics.json").read_text())["metrics"]["n_samples"] == 60


def test_report_cv_needs_two_folds(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["report", "--model", "m", "--data", "d", "--out", "o", "--cv", "1"])
    assert excinfo.value.code == 2
    assert "--cv: needs at least 2 folds, got 1" in capsys.readouterr().err


def test_report_groups_of_wrong_length_fail_before_training(course_dir, tmp_path, capsys):
    np.save(tmp_path / "groups.npy", np.arange(7))
    # a model file that does not exist: the groups are refused before it is even read
    argv = ["report", "--model", str(tmp_path / "none"), "--data", str(course_dir)]
    argv += ["--out", str(tmp_path / "out"), "--cv", "3", "--groups", str(tmp_path / "groups.npy")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--groups groups.npy" in err and "60 labelled tiles" in err
    assert not (tmp_path / "out").exists()


# --- train/tune defaults and summaries (issue 15)
#: Parameters where the recommended preset and the recipe differ, which the tiny
#: networks of these tests leave alone.
PRESET_KEYS = ("preprocessing", "augment", "max_shift", "lr_schedule", "patience")


def _preset(clf):
    return {key: clf.get_params()[key] for key in PRESET_KEYS}


def test_train_defaults_to_the_recommended_preset_and_prints_one_summary(
    course_dir, tmp_path, capsys, tiny_recipe
):

    from skcrater import CraterCNNClassifier
    from skcrater.persistence import load

    model = tmp_path / "model.skcrater"
    assert main(["train", "--data", str(course_dir), "--model", str(model), *TINY_ARGS]) == 0
    assert _preset(load(model)) == _preset(CraterCNNClassifier.recommended())
    out = capsys.readouterr().out
    assert "training on 60 labelled tiles, from CraterCNNClassifier.recommended()" in out
    assert out.count("training summary") == 1
    assert re.search(r"epochs run: +2 \(best epoch [12]\)", out)
    assert re.search(r"validation loss: +\d+\.\d{4} \(best epoch\)", out)
    assert re.search(r"validation accuracy: +\d\.\d{4}", out)
    assert re.search(r"validation F1: +\d\.\d{4}", out)
    assert re.search(r"fit time: +\d+\.\d s", out)
    assert "pseudo-labels" not in out  # no self-training asked for


def test_train_unlabeled_weight_trains_on_the_pool_and_reports_its_share(
    course_dir, tmp_path, capsys, tiny_recipe
):
    from skcrater.persistence import load

    model = tmp_path / "semi.skcrater"
    argv = ["train", "--data", str(course_dir), "--model", str(model), *TINY_ARGS]
    assert main([*argv, "--unlabeled-weight", "1.5", "--use-test-pool"]) == 0
    fitted = load(model)
    assert fitted.unlabeled_weight == 1.5
    assert "unlabeled_share" in fitted.history_  # the pool was used, not only set
    out = capsys.readouterr().out
    assert re.search(r"pseudo-labelled: +\d+% of the unlabelled tiles \(best epoch\)", out)


def test_unlabelled_options_need_a_pool(course_dir, tmp_path, capsys, tiny_recipe):
    (course_dir / "Xtrain1_extra.npy").unlink()
    argv = ["train", "--data", str(course_dir), "--model", str(tmp_path / "m"), *TINY_ARGS]
    assert main([*argv, "--unlabeled-weight", "1"]) == 2
    assert "--unlabeled-weight needs unlabelled tiles in --data" in capsys.readouterr().err
    assert main([*argv, "--use-test-pool"]) == 2
    err = capsys.readouterr().err
    assert "--use-test-pool needs --pseudo-label-threshold, --unlabeled-weight or" in err
    with pytest.raises(SystemExit):
        main([*argv, "--unlabeled-weight", "0"])
    assert "must be a positive number" in capsys.readouterr().err
    assert main([*argv, "--unlabeled-prior", "em"]) == 2
    assert "--unlabeled-prior em needs unlabelled tiles in --data" in capsys.readouterr().err
    for bad in ("1", "0", "mean"):
        with pytest.raises(SystemExit):
            main([*argv, "--unlabeled-prior", bad])
        assert "must be 'em' or a number in (0, 1)" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["em", "0.3"])
def test_train_unlabeled_prior_corrects_the_share_and_reports_it(
    course_dir, tmp_path, capsys, tiny_recipe, value
):
    from skcrater.persistence import load

    model = tmp_path / "prior.skcrater"
    argv = ["train", "--data", str(course_dir), "--model", str(model), *TINY_ARGS]
    assert main([*argv, "--unlabeled-prior", value]) == 0
    fitted = load(model)
    assert fitted.unlabeled_prior == (value if value == "em" else 0.3)
    out = capsys.readouterr().out
    share = fitted.unlabeled_prior_[1]
    how = "estimated on the unlabelled tiles" if value == "em" else "given"
    assert f"corrected to {share:.1%} ({how})" in out
    assert fitted.unlabeled_weight == 0  # no consistency training asked for


def test_recipe_flag_chooses_the_recipe_and_recommended_is_the_documented_default(capsys):
    from skcrater import CraterCNNClassifier, cli

    parser = cli.build_parser()
    argv = ["train", "--data", "d", "--model", "m.skcrater", "--learning-rate", "0.01"]
    recipe = cli._make_classifier(parser.parse_args([*argv, "--recipe"]))
    assert _preset(recipe) == _preset(CraterCNNClassifier())
    assert recipe.learning_rate == 0.01  # an explicit flag still overrides the preset
    for flags in ([], ["--recommended"]):  # the old flag is still accepted
        chosen = cli._make_classifier(parser.parse_args([*argv, *flags]))
        assert _preset(chosen) == _preset(CraterCNNClassifier.recommended())
        assert chosen.learning_rate == 0.01
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, "--recipe", "--recommended"])
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    assert "recommended() (the default)" in " ".join(capsys.readouterr().out.split())
    # demo trains both presets: it takes neither flag
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--recipe"])


@pytest.mark.parametrize(
    "p_crater, line",
    [(0.5, "round 1: 0 of class 0, 0 of class 1"), (0.95, "round 1: 0 of class 0, 30 of class 1")],
)
def test_train_summary_counts_pseudo_labels_and_warns_when_none_were_added(
    course_dir, tmp_path, capsys, monkeypatch, tiny_recipe, p_crater, line
):
    from skcrater import CraterCNNClassifier

    # every tile of the 30-tile pool gets the same p(crater): all or none pass 0.9
    def same_proba(self, X):
        return np.tile([1 - p_crater, p_crater], (len(X), 1))

    monkeypatch.setattr(CraterCNNClassifier, "predict_proba", same_proba)
    args = ["train", "--data", str(course_dir), "--model", str(tmp_path / "st.skcrater")]
    assert main([*args, *TINY_ARGS, "--pseudo-label-threshold", "0.9"]) == 0
    out, err = capsys.readouterr()
    assert out.count("training summary") == 1
    assert f"pseudo-labels, {line}" in out
    warned = "warning: self-training round 1 added no pseudo-labels" in err
    assert warned == (p_crater == 0.5)
    if warned:
        assert "--pseudo-label-threshold 0.9; try a lower threshold" in err


def test_tune_starts_from_the_preset_and_estimates_the_time_of_the_other_trials(
    course_dir, capsys, monkeypatch
):

    from skcrater import CraterCNNClassifier

    calls = []
    recommended = CraterCNNClassifier.recommended.__func__

    def tiny(cls, **params):
        calls.append(params)
        return recommended(cls, **{**TINY_CNN, **params})

    monkeypatch.setattr(CraterCNNClassifier, "recommended", classmethod(tiny))
    argv = ["tune", "--data", str(course_dir), "--n-trials", "2", "--cv", "2"]
    assert main([*argv, "--max-epochs", "2"]) == 0
    assert calls == [{"random_state": 0}]
    out = capsys.readouterr().out
    assert "2 trial(s) here, from CraterCNNClassifier.recommended()" in out
    # the estimate comes after the first fold, once; then a line per fold of each trial
    assert out.count("first fold took") == 1
    assert re.search(
        r"first fold took [\d.]+ s: a trial of 2 folds should take about [\d.]+ s, "
        r"the 2 trials about [\d.]+ s",
        out,
    )
    assert out.index("trial 0, fold 1/2: ") < out.index("first fold took")
    for trial, fold in ((0, 2), (1, 1), (1, 2)):
        assert re.search(rf"trial {trial}, fold {fold}/2: \d+ epochs \(best \d+\), ", out)
    assert "epoch 1/2" not in out  # epoch lines only with --epochs-progress


def test_tune_epochs_progress_and_tensorboard_logs(course_dir, tmp_path, capsys, monkeypatch):
    from skcrater import CraterCNNClassifier

    recommended = CraterCNNClassifier.recommended.__func__
    monkeypatch.setattr(
        CraterCNNClassifier,
        "recommended",
        classmethod(lambda cls, **params: recommended(cls, **{**TINY_CNN, **params})),
    )
    logs, model = tmp_path / "tb", tmp_path / "best.skcrater"
    argv = ["tune", "--data", str(course_dir), "--n-trials", "1", "--cv", "2", "--max-epochs", "2"]
    argv += ["--epochs-progress", "--tensorboard", str(logs), "--model", str(model)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for fold in (1, 2):
        for epoch in (1, 2):
            assert f"  trial 0, fold {fold}/2, epoch {epoch}/2: val_loss " in out
    runs = {p.relative_to(logs).parts[:2] for p in logs.rglob("events.out.tfevents.*")}
    assert runs >= {("trial_0000", "fold_0"), ("trial_0000", "fold_1"), ("refit", "train")}
    assert {run[0] for run in runs} == {"trial_0000", "refit"}


def test_train_writes_tensorboard_logs(course_dir, tmp_path, tiny_recipe):
    logs = tmp_path / "tb"
    argv = ["train", "--data", str(course_dir), "--model", str(tmp_path / "m.skcrater")]
    assert main([*argv, *TINY_ARGS, "--tensorboard", str(logs)]) == 0
    assert {p.parent.name for p in logs.rglob("events.out.tfevents.*")} >= {"train", "validation"}


def test_tune_recipe_flag_searches_the_recipe_network(course_dir, monkeypatch):
    from skcrater import CraterCNNClassifier
    from skcrater.tuning import OptunaSearch

    class Searched(Exception):
        pass

    def stop(self, X, y, **kwargs):
        raise Searched(self.estimator)

    monkeypatch.setattr(OptunaSearch, "fit", stop)
    with pytest.raises(Searched) as excinfo:
        main(["tune", "--data", str(course_dir), "--n-trials", "1", "--recipe"])
    searched = excinfo.value.args[0].get_params()
    assert searched == CraterCNNClassifier(random_state=0).get_params()


# --- clean and exact messages (issue 15)


@pytest.fixture
def tiny_model(tmp_path):
    """A tiny saved CraterCNNClassifier of 16x16 tiles, and tiles to predict."""
    from skcrater import CraterCNNClassifier, save

    X, y = make_craters(40, image_size=16, random_state=0)
    path = tmp_path / "tiny.skcrater"
    save(CraterCNNClassifier(**TINY_CNN, random_state=0, verbose=0).fit(X, y), path)
    np.save(tmp_path / "X.npy", X[:5])
    return path, tmp_path / "X.npy"


def test_version_prints_the_package_version(capsys):
    import skcrater

    with pytest.raises(SystemExit) as excinfo:
        main(["--version"])
    assert excinfo.value.code == 0
    assert capsys.readouterr().out == f"skcrater {skcrater.__version__}\n"


def test_no_tensorflow_chatter(course_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    argv = ["train", "--data", str(course_dir), "--model", str(tmp_path / "m.skcrater")]
    done = subprocess.run(
        [sys.executable, "-m", "skcrater.cli", *argv, "--epochs", "1", "--batch-size", "16"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    # start-up notices (oneDNN, CUDA, absl) and training's C++ log lines (NodeDef ...)
    for word in ("onednn", "cuda", "absl", "tensorflow", "nodedef", ".cc:"):
        assert word not in done.stderr.lower(), done.stderr
    assert "model saved" in done.stdout


def test_quiet_import_keeps_what_the_log_level_shows():
    from skcrater.cli import _is_chatter

    info = "I0000 00:00:1796172157.189736  9738 port.cc:153] oneDNN custom operations are on.\n"
    error = "E0000 00:00:1796172163.892317  9738 foo.cc:52] something real broke\n"
    assert _is_chatter(info, 2) and not _is_chatter(info, 0)  # TF_CPP_MIN_LOG_LEVEL=0: all
    assert not _is_chatter(error, 2) and _is_chatter(error, 3)
    no_gpu = "E0000 00:00:1796172163.892317  9738 cuda_platform.cc:52] failed call to cuInit\n"
    assert _is_chatter(no_gpu, 2)  # no GPU: TensorFlow runs on the CPU, nothing is wrong
    assert not _is_chatter("Traceback (most recent call last):\n", 3)


def test_predict_writes_and_prints_the_path_it_writes(tiny_model, tmp_path, capsys):
    model, X = tiny_model
    argv = ["predict", "--model", str(model), "--input", str(X), "--output"]
    assert main([*argv, str(tmp_path / "pred.csv")]) == 0
    written = tmp_path / "pred.csv.npy"  # .npy added, as numpy.save and --help say
    assert np.load(written).shape == (5,)
    assert capsys.readouterr().out.rstrip().endswith(f"written to {written}")
    # the existing file is refused before the model is loaded, in the CLI's words
    assert main([*argv, str(tmp_path / "pred.csv")]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "overwrite=True" not in err and str(written) in err


@pytest.mark.parametrize("shape", [(12,), (12, 1)])
def test_predict_says_labels_are_not_tiles(tmp_path, capsys, shape):
    np.save(tmp_path / "Ytrain1.npy", np.zeros(shape, dtype=int))
    argv = ["predict", "--model", str(tmp_path / "missing.skcrater")]
    argv += ["--input", str(tmp_path / "Ytrain1.npy"), "--output", str(tmp_path / "y.npy")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "looks like labels, not tiles" in err and err.count("\n") == 1


@pytest.mark.parametrize("problem", ["folder", "missing folder", "read-only folder"])
def test_train_refuses_an_unwritable_model_before_training(
    course_dir, tmp_path, capsys, monkeypatch, tiny_recipe, problem
):
    from skcrater import cli

    model = {"folder": tmp_path, "missing folder": tmp_path / "nope" / "m.skcrater"}.get(
        problem, tmp_path / "m.skcrater"
    )
    if problem == "read-only folder":  # chmod means nothing to root: os.access answers
        monkeypatch.setattr(cli.os, "access", lambda path, mode: Path(path) != tmp_path)
    argv = ["train", "--data", str(course_dir), "--model", str(model), "--overwrite"]
    assert main([*argv, *TINY_ARGS]) == 2
    out, err = capsys.readouterr()
    assert "training on" not in out  # refused before, not after, training
    assert err.startswith("skcrater train: error: ") and err.count("\n") == 1
    assert {"folder": "is a folder", "missing folder": "does not exist"}.get(
        problem, "not writable"
    ) in err


@pytest.mark.parametrize(
    ("raised", "status", "said"),
    [
        (PermissionError("denied"), 2, "error: denied"),
        (TypeError("bad type"), 2, "error: bad type"),
        # the library's words for the option, as the command line spells it
        (FileExistsError("o exists; pass overwrite=True"), 2, "error: o exists; pass --overwrite"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_exit_status_follows_one_rule(monkeypatch, capsys, raised, status, said):
    from skcrater import cli

    def fail(args):
        raise raised

    monkeypatch.setattr(cli, "_cmd_predict", fail)
    assert main(["predict", "--model", "m", "--input", "x", "--output", "y"]) == status
    assert capsys.readouterr().err == f"skcrater predict: {said}\n"


def test_an_internal_error_is_a_bug_with_its_traceback(monkeypatch, capsys):
    from skcrater import cli

    def fail(args):
        raise RuntimeError("oops")

    monkeypatch.setattr(cli, "_cmd_predict", fail)
    with pytest.raises(RuntimeError):  # raised again: Python prints it and exits with 1
        main(["predict", "--model", "m", "--input", "x", "--output", "y"])
    assert "internal error, a bug in skcrater" in capsys.readouterr().err


@pytest.fixture
def hrsc48_dir(tmp_path):
    """A folder in the HRSC48 layout (names of shared/data/hrsc48) of synthetic tiles."""
    X, y, pool = make_craters(60, image_size=16, n_unlabeled=30, random_state=0)
    folder = tmp_path / "hrsc48"
    folder.mkdir()
    files = {"X": X, "y": y, "groups": np.arange(60) // 6, "unlabeled_X": pool}
    for name, array in files.items():
        np.save(folder / f"west_{name}.npy", array)
    return folder


def test_data_reads_the_hrsc48_layout(hrsc48_dir, tmp_path, capsys, tiny_recipe):
    from skcrater import cli

    data = cli._load_data(hrsc48_dir)
    assert data.X.shape == (60, 256) and data.X_extra.shape == (30, 256) and data.X_test is None
    model = tmp_path / "m.skcrater"
    assert main(["train", "--data", str(hrsc48_dir), "--model", str(model), *TINY_ARGS]) == 0
    assert "training on 60 labelled tiles" in capsys.readouterr().out and model.is_file()


def test_report_reads_the_hrsc48_layout(hrsc48_dir, tiny_model, tmp_path):
    model, _ = tiny_model
    out = tmp_path / "report"
    argv = ["report", "--model", str(model), "--data", str(hrsc48_dir), "--out", str(out)]
    assert main(argv) == 0
    assert json.loads((out / "metrics.json").read_text())["metrics"]["n_samples"] == 60


def test_data_without_xtrain1_says_what_to_do(tmp_path, capsys):
    folder = tmp_path / "public"
    folder.mkdir()
    np.save(folder / "Xtest1.npy", make_craters(4, image_size=16, random_state=0)[0])
    argv = ["train", "--data", str(folder), "--model", str(tmp_path / "m.skcrater")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "may lack Xtrain1.npy" in err and "west_X.npy" in err and err.count("\n") == 1


def test_self_training_without_unlabelled_tiles_is_a_usage_error(course_dir, tmp_path, capsys):
    (course_dir / "Xtrain1_extra.npy").unlink()
    argv = ["train", "--data", str(course_dir), "--model", str(tmp_path / "m.skcrater")]
    assert main([*argv, "--pseudo-label-threshold", "0.9"]) == 2  # SystemExit gave 1
    assert "needs unlabelled tiles in --data" in capsys.readouterr().err

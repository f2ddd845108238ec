"""Tests of the ``skcrater`` command line, end to end on tiny synthetic data."""

import json
import subprocess
import sys

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
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert 0 <= metrics["f1"] <= 1
    assert np.sum(metrics["confusion_matrix"]) == 20  # the 25% test split of 80 tiles
    assert (out / "report.html").stat().st_size > 1000


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
    with pytest.raises(SystemExit, match="input file not found"):
        main(["predict", "--model", "m", "--input", str(tmp_path / "X.npy"), "--output", "o.npy"])


def test_recommended_flag_starts_from_the_preset_and_keeps_overrides():
    from skcrater import CraterCNNClassifier, cli

    argv = ["train", "--data", "d", "--model", "m.skcrater", "--epochs", "3"]
    preset = CraterCNNClassifier.recommended().get_params()
    chosen = cli._make_classifier(cli.build_parser().parse_args([*argv, "--recommended"]))
    params = chosen.get_params()
    params.pop("verbose")  # follows whether stdout is a terminal
    preset.pop("verbose")
    assert params == {**preset, "epochs": 3, "random_state": 0}
    recipe = cli._make_classifier(cli.build_parser().parse_args(argv))
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

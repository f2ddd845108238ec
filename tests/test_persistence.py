"""skcrater.save / skcrater.load: round trips, refusals and damaged files."""

import json
import pickle
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import TINY_CNN, make_blob_images
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skcrater import TileStandardizer, persistence
from skcrater.persistence import ModelFileError, load, read_manifest, save


@pytest.fixture(scope="module")
def data():
    return make_blob_images(n=40, side=16, random_state=1)


@pytest.fixture(scope="module")
def cnn(data):
    from skcrater import CraterCNNClassifier

    X, y = data
    return CraterCNNClassifier(**TINY_CNN, class_weight={0: 1.0, 1: 2.0}, random_state=0).fit(X, y)


@pytest.fixture
def logreg(data):
    X, y = data
    return LogisticRegression(max_iter=200).fit(X / 255.0, y)


@pytest.fixture
def saved(tmp_path, logreg):
    return save(logreg, tmp_path / "model.skcrater")


def _rewrite(path, change):
    """Rewrite a model file with ``change(dict of member name -> bytes)`` applied."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    change(members)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _edit_manifest(path, edit):
    def change(members):
        manifest = json.loads(members["manifest.json"])
        edit(manifest)
        members["manifest.json"] = json.dumps(manifest).encode()

    _rewrite(path, change)


# ----------------------------------------------------------------- round trips
def test_cnn_round_trip_is_exact(cnn, data, tmp_path):
    X, _ = data
    loaded = load(save(cnn, tmp_path / "cnn.skcrater"))
    assert type(loaded) is type(cnn)
    np.testing.assert_array_equal(loaded.predict_proba(X), cnn.predict_proba(X))
    assert loaded.get_params() == cnn.get_params()
    for name in ("history_", "best_epoch_", "n_epochs_", "image_shape_", "input_scale_"):
        assert getattr(loaded, name) == getattr(cnn, name)
    np.testing.assert_array_equal(loaded.classes_, cnn.classes_)
    assert loaded.model_.count_params() == cnn.model_.count_params()


def test_cnn_network_is_stored_beside_its_attributes(cnn, tmp_path):
    # the layout of format 1, which every skcrater reading format 1 understands
    node = read_manifest(save(cnn, tmp_path / "cnn.skcrater"))["estimator"]
    assert node["network"].startswith("networks/")
    assert "model_" not in node["attributes"]
    assert {"classes_", "image_shape_", "input_scale_", "history_"} <= set(node["attributes"])


def test_loading_a_cnn_restores_its_network_without_scikeras(cnn, data, tmp_path):
    # the network is put back as it was saved: no wrapper set up on dummy tiles
    X, _ = data
    path = save(cnn, tmp_path / "cnn.skcrater")
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "p.npy", cnn.predict_proba(X))
    code = (
        "import sys, numpy as np\n"
        "from skcrater import load\n"
        f"clf = load({str(path)!r})\n"
        f"X, p = np.load({str(tmp_path / 'X.npy')!r}), np.load({str(tmp_path / 'p.npy')!r})\n"
        "np.testing.assert_array_equal(clf.predict_proba(X), p)\n"
        "assert 'scikeras' not in sys.modules, 'scikeras imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_loaded_cnn_pickles_clones_and_keeps_training(cnn, data, tmp_path):
    X, y = data
    loaded = load(save(cnn, tmp_path / "cnn.skcrater"))
    unpickled = pickle.loads(pickle.dumps(loaded))
    np.testing.assert_array_equal(unpickled.predict_proba(X), cnn.predict_proba(X))
    assert clone(loaded).get_params() == cnn.get_params()
    before = loaded.model_.get_weights()
    loaded.set_params(warm_start=True, epochs=1).fit(X, y)
    assert loaded.n_epochs_ == 1
    assert any(
        not np.array_equal(a, b) for a, b in zip(before, loaded.model_.get_weights(), strict=True)
    )


def test_plain_pickle_of_fitted_cnn(cnn, data):
    X, _ = data
    restored = pickle.loads(pickle.dumps(cnn))
    np.testing.assert_array_equal(restored.predict_proba(X), cnn.predict_proba(X))


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
def test_pipeline_with_cnn_round_trip(cnn, data, tmp_path):
    X, y = data
    # per-tile standardisation after the scaler: this network learns (a constant output would warn)
    pipe = make_pipeline(StandardScaler(), clone(cnn).set_params(preprocessing="standardize"))
    pipe.fit(X, y)
    loaded = load(save(pipe, tmp_path / "pipe.skcrater"))
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    np.testing.assert_array_equal(loaded[0].scale_, pipe[0].scale_)


def test_self_training_wrapper_round_trip(cnn, data, tmp_path):
    from skcrater import SelfTrainingWrapper

    X, y = data
    unlabeled, _ = make_blob_images(n=16, side=16, random_state=2)
    model = SelfTrainingWrapper(
        clone(cnn), threshold={0: 0.5, 1: 0.5}, max_iter=1, retrain_params={"epochs": 1}
    ).fit(X, y, X_unlabeled=unlabeled)
    loaded = load(save(model, tmp_path / "st.skcrater"))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    for name in ("transduction_", "labeled_iter_", "pseudo_label_counts_", "classes_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert (loaded.n_iter_, loaded.termination_condition_) == (
        model.n_iter_,
        model.termination_condition_,
    )
    assert loaded.threshold == {0: 0.5, 1: 0.5}
    assert loaded.estimator_.history_ == model.estimator_.history_
    assert not hasattr(loaded.estimator, "model_")  # the unfitted template


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_pipeline(StandardScaler(), PCA(3, random_state=np.random.RandomState(0))),
        lambda: LogisticRegression(C=0.5, class_weight={0: 1.0, 1: 3.0}),
        lambda: make_pipeline(TileStandardizer(), LogisticRegression()),
    ],
)
def test_sklearn_estimators_round_trip(make, data, tmp_path):
    X, y = data
    est = make().fit(X / 255.0, y)
    loaded = load(save(est, tmp_path / "est.skcrater"))
    out = "transform" if hasattr(est, "transform") else "predict_proba"
    np.testing.assert_array_equal(getattr(loaded, out)(X / 255.0), getattr(est, out)(X / 255.0))
    assert _no_addresses(loaded.get_params()) == _no_addresses(est.get_params())
    for name, value in est.get_params().items():
        if isinstance(value, np.random.RandomState):
            old, new = value.get_state(), loaded.get_params()[name].get_state()
            np.testing.assert_array_equal(new[1], old[1])
            assert new[2:] == old[2:]


def _no_addresses(params):
    return re.sub(r" at 0x[0-9A-Fa-f]+", "", repr(params))


def test_string_labels_and_string_object_arrays_round_trip(data, tmp_path):
    X, y = data
    est = LogisticRegression().fit(X / 255.0, np.array(["flat", "crater"])[y])
    est.tile_ids_ = np.array([f"tile{i}" for i in range(len(X))], dtype=object)
    loaded = load(save(est, tmp_path / "est.skcrater"))
    assert loaded.tile_ids_.dtype == object
    np.testing.assert_array_equal(loaded.tile_ids_, est.tile_ids_)
    np.testing.assert_array_equal(loaded.classes_, est.classes_)
    np.testing.assert_array_equal(loaded.predict(X / 255.0), est.predict(X / 255.0))


def test_unfitted_estimator_and_special_floats(tmp_path):
    est = LogisticRegression(C=float("inf"), tol=np.float32(1e-3))
    loaded = load(save(est, tmp_path / "est.skcrater"))
    assert loaded.C == float("inf")
    assert loaded.tol == est.tol and type(loaded.tol) is np.float32
    assert not hasattr(loaded, "coef_")


def test_metadata_and_versions_in_manifest(logreg, tmp_path):
    path = save(logreg, tmp_path / "m.skcrater", metadata={"fit_time_s": 1.5})
    manifest = read_manifest(path)
    assert manifest["metadata"] == {"fit_time_s": 1.5}
    assert manifest["format_version"] == persistence.FORMAT_VERSION
    assert manifest["estimator"]["class"] == "sklearn.linear_model.LogisticRegression"
    assert {"skcrater", "scikit-learn", "numpy"} <= set(manifest["versions"])
    with pytest.raises(TypeError, match="JSON"):
        save(logreg, tmp_path / "n.skcrater", metadata={"x": object()})


# -------------------------------------------------------------------- refusals
def test_unsupported_estimators_raise_type_error(data, tmp_path):
    X, y = data
    with pytest.raises(TypeError, match="FunctionTransformer.*pickle"):
        save(make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()), tmp_path / "a")

    class MyScaler(StandardScaler):
        pass

    with pytest.raises(TypeError, match="MyScaler"):
        save(MyScaler(), tmp_path / "b")
    est = LogisticRegression().fit(X, y)
    est.extra_ = lambda: None
    with pytest.raises(TypeError, match="extra_"):
        save(est, tmp_path / "c")
    assert not list(tmp_path.iterdir())


def test_refuses_to_overwrite_unless_asked(saved, logreg, data):
    X, y = data
    before = saved.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save(LogisticRegression(), saved)
    assert saved.read_bytes() == before
    save(LogisticRegression(C=0.1), saved, overwrite=True)
    assert load(saved).C == 0.1
    with pytest.raises(IsADirectoryError):
        save(logreg, saved.parent)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save(logreg, saved.parent / "missing" / "m.skcrater")


def test_interrupted_save_keeps_the_old_file(saved, logreg, monkeypatch):
    before = saved.read_bytes()
    calls = []

    def fail_midway(self, name, data, *args, **kwargs):
        calls.append(name)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return original(self, name, data, *args, **kwargs)

    original = zipfile.ZipFile.writestr
    monkeypatch.setattr(zipfile.ZipFile, "writestr", fail_midway)
    with pytest.raises(KeyboardInterrupt):
        save(logreg, saved, overwrite=True)
    assert len(calls) == 2
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


# -------------------------------------------------------------- damaged files
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model file"):
        load(tmp_path / "nothing.skcrater")


def test_truncated_file(saved):
    saved.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupted"):
        load(saved)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "x.skcrater"
    path.write_text("hello")
    with pytest.raises(ModelFileError):
        load(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", json.dumps({"format": "other"}))
    with pytest.raises(ModelFileError, match="not a skcrater model"):
        load(path)


def test_tampered_member(saved):
    def change(members):
        name = next(n for n in members if n.endswith(".npy"))
        data = bytearray(members[name])
        data[-1] ^= 1
        members[name] = bytes(data)

    _rewrite(saved, change)
    with pytest.raises(ModelFileError, match="checksum"):
        load(saved)


def test_added_or_removed_member(saved, tmp_path):
    _rewrite(saved, lambda members: members.update({"evil.pkl": b"x"}))
    with pytest.raises(ModelFileError, match="do not match"):
        load(saved)


def test_newer_format_version(saved):
    _edit_manifest(saved, lambda m: m.update(format_version=persistence.FORMAT_VERSION + 1))
    with pytest.raises(ModelFileError, match="Upgrade skcrater"):
        load(saved)


def test_class_outside_allow_list_is_not_imported(saved):
    def edit(manifest):
        manifest["estimator"]["class"] = "os.system"

    _edit_manifest(saved, edit)
    with pytest.raises(ModelFileError, match="'os.system', which is not one of"):
        load(saved)


def test_unknown_parameter_names_versions(saved):
    _edit_manifest(saved, lambda m: m["estimator"]["params"].update(bogus=1))
    with pytest.raises(ModelFileError, match="do not fit this version.*scikit-learn"):
        load(saved)


def test_keras_safe_mode_refuses_lambda_layers(tmp_path):
    keras = pytest.importorskip("keras")
    from skcrater.persistence import _Writer

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    writer = _Writer()
    name = writer.network(model)
    with pytest.raises(ModelFileError, match="cannot read network.*safe_mode"):
        persistence._Reader(writer.members, tmp_path, {}).network(name)


def test_a_file_that_appears_during_save_is_not_replaced(logreg, tmp_path, monkeypatch):
    """The no-clobber rename of the shared writer (skcrater._files) holds for model files."""
    path = tmp_path / "model.skcrater"
    original = zipfile.ZipFile.writestr

    def another_process_takes_the_name(self, name, data, *args, **kwargs):
        if not path.exists():
            path.write_bytes(b"theirs")
        return original(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", another_process_takes_the_name)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save(logreg, path)
    assert path.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]

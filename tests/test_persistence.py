"""skcrater.save / skcrater.load: round trips, refusals and damaged files."""

import json
import pickle
import re
import signal
import struct
import subprocess
import sys
import tracemalloc
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
from skcrater._files import atomic_writer
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
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _edit_manifest(path, edit):
    def change(members):
        manifest = json.loads(members["manifest.json"])
        edit(manifest)
        members["manifest.json"] = json.dumps(manifest).encode()

    _rewrite(path, change)


def _declare_size(path, name, size):
    """Make both zip headers of member ``name`` (local and central) declare ``size`` bytes."""
    with zipfile.ZipFile(path) as archive:
        local, entry = archive.getinfo(name).header_offset, archive.start_dir
    data = bytearray(path.read_bytes())
    while data[entry + 46 : entry + 46 + len(name)] != name.encode():
        entry = data.index(b"PK\x01\x02", entry + 46)  # the next central directory entry
    struct.pack_into("<I", data, local + 22, size)  # offsets of the APPNOTE's size fields
    struct.pack_into("<I", data, entry + 24, size)
    path.write_bytes(data)


def _peak_memory(function):
    """The most memory (bytes) Python allocated at once while ``function()`` ran."""
    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _refusal(path, **kwargs):
    """Load ``path``; return the ModelFileError it must raise."""
    with pytest.raises(ModelFileError) as info:
        load(path, **kwargs)
    return info.value


@pytest.fixture
def unsafe_keras():
    """Keras' process-wide unsafe deserialization, switched on for one test only."""
    keras = pytest.importorskip("keras")
    from keras.src.saving.serialization_lib import SafeModeScope, in_safe_mode

    with SafeModeScope(in_safe_mode()):  # puts the setting back as it was on exit
        keras.config.enable_unsafe_deserialization()
        yield


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


def test_soft_vote_round_trips_with_its_voters_by_name(data, tmp_path):
    from sklearn.ensemble import VotingClassifier

    X, y = data
    voters = [("a", LogisticRegression(C=0.1)), ("off", "drop"), ("b", LogisticRegression())]
    vote = VotingClassifier(voters, voting="soft", weights=[1, 5, 2]).fit(X / 255.0, y)
    loaded = load(save(vote, tmp_path / "vote.skcrater"))
    np.testing.assert_array_equal(loaded.predict_proba(X / 255.0), vote.predict_proba(X / 255.0))
    assert list(loaded.named_estimators_) == ["a", "off", "b"]
    assert loaded.named_estimators_.b is loaded.estimators_[1]  # one object, as fit leaves it
    assert loaded.named_estimators_["off"] == "drop" and loaded.named_estimators_.a.C == 0.1


def test_a_vote_whose_voters_do_not_match_its_estimators_is_refused(data, tmp_path):
    from sklearn.ensemble import VotingClassifier

    X, y = data
    vote = VotingClassifier([("a", LogisticRegression())], voting="soft").fit(X / 255.0, y)
    path = save(vote, tmp_path / "vote.skcrater")
    _edit_manifest(path, lambda m: m["estimator"]["attributes"].update(estimators_=[1, 2]))
    assert "1 voters but fitted estimators_" in str(_refusal(path))
    _edit_manifest(path, lambda m: m["estimator"]["attributes"].update(estimators_=["x"]))
    assert "estimators_ must hold estimators" in str(_refusal(path))


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


# ------------------------------------------------------------- untrusted files
def test_networks_load_in_safe_mode_even_after_unsafe_mode_is_enabled(
    logreg, tmp_path, unsafe_keras, monkeypatch
):
    import keras
    from keras.src.saving.serialization_lib import in_safe_mode

    marker = tmp_path / "code-ran"
    monkeypatch.setenv("SKCRATER_TEST_MARKER", str(marker))
    inputs = keras.Input((2,))
    # the lambda runs whenever Keras rebuilds the network: on loading, as at predict_proba
    # (Keras stores no defaults nor closures of a lambda: it finds the marker by itself)
    code = keras.layers.Lambda(
        lambda t: (open(__import__("os").environ["SKCRATER_TEST_MARKER"], "w").close(), t)[1]
    )
    logreg.network_ = keras.Model(inputs, code(inputs))
    path = save(logreg, tmp_path / "crafted.skcrater")
    marker.unlink(missing_ok=True)
    with pytest.raises(ModelFileError, match="(?s)cannot read network.*Python lambda"):
        load(path)
    assert not marker.exists()
    assert in_safe_mode() is False  # the process-wide setting is left as it was


def test_a_member_larger_than_the_manifest_declares_is_refused_before_unpacking(saved):
    # 64 MiB of zeros deflate to 64 KiB: a small file that would fill the memory
    def change(members):
        name = next(n for n in members if n.endswith(".npy"))
        members[name] = bytes(2**26)

    _rewrite(saved, change)
    peak = _peak_memory(lambda: _refusal(saved))
    assert re.search(r"holds 67108864 bytes, but the manifest declares \d+", str(_refusal(saved)))
    assert peak < 2**23


def test_a_member_larger_than_its_zip_headers_declare_is_never_inflated(saved):
    # the manifest and both zip headers agree on a small size: only unpacking shows the lie
    def change(members):
        manifest = json.loads(members["manifest.json"])
        members[name] = bytes(2**26)
        manifest["members"][name]["size"] = 100
        members["manifest.json"] = json.dumps(manifest).encode()

    name = next(n for n in read_manifest(saved)["members"] if n.endswith(".npy"))
    _rewrite(saved, change)
    _declare_size(saved, name, 100)
    peak = _peak_memory(lambda: _refusal(saved))
    assert "truncated or corrupted" in str(_refusal(saved))
    assert peak < 2**23


def test_max_size_bounds_what_a_file_may_unpack_to(saved, data):
    X, _ = data
    size = sum(info.file_size for info in zipfile.ZipFile(saved).infolist())
    assert f"unpacks to {size} bytes, more than max_size=1000" in str(
        _refusal(saved, max_size=1000)
    )
    with pytest.raises(ModelFileError, match="max_size"):
        read_manifest(saved, max_size=1000)
    assert load(saved, max_size=size).predict(X).shape == (len(X),)
    assert persistence.MAX_SIZE == 2**30
    with pytest.raises(ValueError, match="max_size must be a positive integer"):
        load(saved, max_size=0)


@pytest.fixture
def saved_pca(tmp_path):
    """An unfitted PCA with a RandomState: parameters of most tagged kinds."""
    est = PCA(n_components=2, random_state=np.random.RandomState(0))
    return save(est, tmp_path / "pca.skcrater")


def _set(key, value, where="params"):
    """An edit of the manifest setting the estimator's ``where[key]`` (``where=None``: ``key``)."""

    def edit(manifest):
        node = manifest["estimator"]
        (node if where is None else node[where])[key] = value

    return edit


def _edit_random_state(index, value):
    def edit(manifest):
        manifest["estimator"]["params"]["random_state"]["__random_state__"][index] = value

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        # a RandomState that NumPy would read out of its keys with (or crash on)
        (_edit_random_state(1, [1, 2, 3]), r"__random_state__ entry at .*random_state.*624"),
        (_edit_random_state(2, 625), r"__random_state__ entry.*position in \[0, 624\], got 625"),
        (_edit_random_state(2, -1), r"__random_state__ entry.*got -1"),
        (_edit_random_state(0, "PCG64"), r"__random_state__ entry.*MT19937"),
        (_set("random_state", {"__random_state__": {"a": 1}}), "__random_state__.*expected a list"),
        (_set("n_components", {"__tuple__": "ab"}), "__tuple__ entry at .*n_components"),
        (_set("n_components", {"__scalar__": "|O", "value": 2}), "scalars of dtype object"),
        (_set("n_components", {"__scalar__": "|i1", "value": 1000}), "__scalar__ entry.*1000"),
        (_set("n_components", {"__strings__": ["a", {"b": 1}]}), "__strings__.*list of strings"),
        (_set("n_components", {"__dict__": [[1]]}), "__dict__ entry at .*n_components"),
        (_set("n_components", {"__tuple__": [], "__float__": "1"}), "unknown entry"),
        (_set("n_components", -5), r"'n_components' parameter of PCA.*Got -5"),
        (_set("n_components", 2, where="attributes"), r"\['n_components'\] are stored both"),
        (_set("attributes", {"__dict__": [["__class__", 1]]}, where=None), "dict of names"),
        (_set("attributes", {"__dict__": [[1, 2]]}, where=None), "dict of names"),
        (_set("n_components", "DEEP"), "nested too deeply|not valid JSON"),
        (lambda m: m["estimator"].pop("attributes"), "needs a class, params and attributes"),
        (lambda m: m["members"].update({"arrays/000.npy": {"sha256": "x"}}), "declares None"),
    ],
)
def test_every_malformed_entry_is_a_model_file_error(saved_pca, edit, message):
    def change(members):
        manifest = json.loads(members["manifest.json"])
        edit(manifest)
        deep = "[" * 100_000 + "]" * 100_000  # nested deeper than any recursion limit
        members["manifest.json"] = json.dumps(manifest).replace('"DEEP"', deep).encode()

    _rewrite(saved_pca, change)
    assert re.search(message, str(_refusal(saved_pca)))


def test_invalid_cnn_parameters_are_refused_with_their_name(cnn, tmp_path):
    path = save(cnn, tmp_path / "cnn.skcrater")
    _edit_manifest(path, _set("epochs", -5))
    with pytest.raises(ModelFileError, match=r"'epochs' parameter of CraterCNNClassifier.*-5"):
        load(path)


def test_an_array_entry_must_name_an_npy_member(cnn, tmp_path):
    # np.load would open a .keras (zip) member as an .npz archive instead of refusing it
    path = save(cnn, tmp_path / "cnn.skcrater")

    def edit(manifest):
        network = manifest["estimator"]["network"]
        manifest["estimator"]["attributes"]["extra_"] = {"__ndarray__": network}

    _edit_manifest(path, edit)
    with pytest.raises(ModelFileError, match=r"cannot read array 'networks/"):
        load(path)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_the_next_save_removes_what_a_killed_save_left(logreg, tmp_path):
    path = tmp_path / "model.skcrater"
    code = (
        "import os, signal, zipfile\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from skcrater import save\n"
        "original = zipfile.ZipFile.writestr\n"
        "def killed_midway(self, name, data, *args, **kwargs):\n"
        "    if name != 'manifest.json':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return original(self, name, data, *args, **kwargs)\n"
        "zipfile.ZipFile.writestr = killed_midway\n"
        f"save(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), {str(path)!r})\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == -signal.SIGKILL
    (left,) = tmp_path.iterdir()
    assert re.fullmatch(r"\.model\.skcrater\.[0-9a-f]{12}\.part", left.name)
    save(logreg, tmp_path / "other.skcrater")  # another destination leaves it alone
    assert left.exists()
    save(logreg, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.skcrater", "other.skcrater"]


def test_a_save_removes_only_dead_temporary_files_of_its_own_destination(logreg, tmp_path):
    path = tmp_path / "model.skcrater"
    stale = tmp_path / ".model.skcrater.0123456789ab.part"
    others = [
        ".other.skcrater.0123456789ab.part",  # another destination's
        ".model.skcrater.part",  # not a name skcrater gives: maybe the user's
        ".model.skcrater.notes.part",
        "model.skcrater.0123456789ab.part",
    ]
    for name in [stale.name, *others]:
        (tmp_path / name).write_bytes(b"half a file")
    with atomic_writer(path, overwrite=True) as live:  # a save still being written
        live.write(b"in progress")
        (live_part,) = {p.name for p in tmp_path.iterdir()} - {stale.name, *others}
        save(logreg, path, overwrite=True)
        names = {p.name for p in tmp_path.iterdir()}
    assert names == {live_part, path.name, *others}


def test_saving_without_the_optimizer_state_still_predicts_identically(cnn, data, tmp_path):
    X, y = data
    full = save(cnn, tmp_path / "full.skcrater")
    slim = save(cnn, tmp_path / "slim.skcrater", include_optimizer=False)
    assert _network_bytes(slim) < _network_bytes(full)
    assert int(load(full).model_.optimizer.iterations) > 0  # the full file goes on from there
    loaded = load(slim)
    np.testing.assert_array_equal(loaded.predict_proba(X), cnn.predict_proba(X))
    assert pickle.loads(pickle.dumps(loaded)).predict(X).tolist() == cnn.predict(X).tolist()
    with pytest.raises(ValueError, match="compile"):  # it cannot go on training
        loaded.set_params(warm_start=True, epochs=1).fit(X, y)
    loaded.set_params(warm_start=False).fit(X, y)  # but can start again
    assert loaded.n_epochs_ == 1


def _network_bytes(path):
    return sum(e["size"] for n, e in read_manifest(path)["members"].items() if "networks" in n)

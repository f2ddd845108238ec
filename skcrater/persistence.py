"""Save and load fitted estimators without pickle.

A model file (``.skcrater`` by convention) is a zip archive holding

* ``manifest.json``: the format name and version, the versions of skcrater,
  scikit-learn, NumPy (and Keras) that wrote it, optional user metadata, the
  SHA-256 and size of every other member, and the estimator: its class (from
  a fixed allow-list), its parameters and its fitted attributes as tagged
  JSON;
* ``arrays/NNN.npy``: the NumPy arrays, read back with ``allow_pickle=False``;
* ``networks/NNN.keras``: each Keras network in Keras' native format, read
  back with ``keras.saving.load_model(..., safe_mode=True)``.

Loading therefore never unpickles anything and never imports a class that is
not in :data:`SUPPORTED_CLASSES`; Keras' safe mode refuses lambda layers and
objects from outside Keras. The checksums catch truncated, corrupted and
edited files; they are not a signature (whoever can edit the file can also
rewrite them), but even a forged file can only hold data.

Supported estimators are those of :data:`SUPPORTED_CLASSES`, nested in any
way (a :class:`~sklearn.pipeline.Pipeline` of a scaler and a
:class:`~skcrater.SelfTrainingWrapper` around a
:class:`~skcrater.CraterCNNClassifier`, say), whose parameters and fitted
attributes are ``None``, bools, numbers, strings, lists, tuples, dicts, NumPy
arrays and scalars (not of object dtype, except arrays of strings), NumPy
``RandomState`` instances, Keras models and other supported estimators.
Anything else (a function in a ``FunctionTransformer``, a custom class) raises
a ``TypeError``; pickle (or joblib) stores any estimator, but load pickles
only from sources you trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import math
import os
import sys
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ._files import atomic_writer, check_destination

__all__ = ["save", "load", "read_manifest", "ModelFileError", "SUPPORTED_CLASSES", "FORMAT_VERSION"]

#: Version of the file layout written by :func:`save`; :func:`load` reads this
#: version and older ones.
FORMAT_VERSION = 1
_FORMAT_NAME = "skcrater-model"
_MANIFEST = "manifest.json"

#: The estimator classes :func:`save` and :func:`load` handle, by public name.
SUPPORTED_CLASSES = (
    "skcrater.CraterCNNClassifier",
    "skcrater.SelfTrainingWrapper",
    "skcrater.TileStandardizer",
    "skcrater.detection.CraterDetector",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing.StandardScaler",
    "sklearn.preprocessing.MinMaxScaler",
    "sklearn.preprocessing.MaxAbsScaler",
    "sklearn.preprocessing.RobustScaler",
    "sklearn.decomposition.PCA",
    "sklearn.linear_model.LogisticRegression",
)

_CNN = "skcrater.CraterCNNClassifier"


class ModelFileError(ValueError):
    """A model file is not a readable skcrater model (corrupt, edited, too new).

    A subclass of ``ValueError``, raised by :func:`load` and
    :func:`read_manifest`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skcrater.persistence import ModelFileError, load
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "broken.skcrater"
    >>> _ = path.write_bytes(b"not a zip file")
    >>> try:
    ...     load(path)
    ... except ModelFileError:
    ...     print("refused")
    refused
    """


# ----------------------------------------------------------------------- public
def save(estimator, path, *, overwrite=False, metadata=None):
    """Save an estimator to a single model file, without pickle.

    The file is written under a temporary name in the destination folder and
    renamed into place only once complete, so an interrupted save never
    leaves a half-written file, nor damages the file it would replace.

    Parameters
    ----------
    estimator : estimator
        A fitted (or unfitted) estimator of :data:`SUPPORTED_CLASSES`,
        possibly nested (pipelines, wrappers).
    path : str or path-like
        Destination file; ``.skcrater`` is the conventional suffix.
    overwrite : bool, default=False
        Replace an existing file. When False an existing file raises
        ``FileExistsError``.
    metadata : dict, default=None
        JSON-serialisable information stored with the model (training time,
        data description, ...); read it back with :func:`read_manifest`.

    Returns
    -------
    path : pathlib.Path
        The written file.

    Raises
    ------
    TypeError
        If the estimator, or something it holds, cannot be stored safely.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    IsADirectoryError, FileNotFoundError
        If ``path`` is a folder, or names a file in a folder that does not
        exist.

    See Also
    --------
    load : Read the file back.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skcrater import save, load
    >>> clf = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.skcrater"
    >>> _ = save(clf, path)
    >>> load(path).predict([[0.5], [2.5]])
    array([0, 1])
    """
    path = check_destination(path, overwrite=overwrite)
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}.")
    writer = _Writer()
    tree = writer.estimator(estimator, type(estimator).__name__)
    manifest = {
        "format": _FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": _library_versions(writer.has_networks),
        "metadata": _check_json(metadata or {}, "metadata"),
        "members": {
            name: {"sha256": _sha256(data), "size": len(data)}
            for name, data in writer.members.items()
        },
        "estimator": tree,
    }
    _write_atomically(path, writer.members, manifest, overwrite=overwrite)
    return path


def load(path):
    """Load an estimator saved by :func:`save`.

    Nothing is unpickled and only classes of :data:`SUPPORTED_CLASSES` are
    created; Keras networks are read in Keras' safe mode. The loaded
    estimator predicts exactly as the saved one, and can be pickled, cloned
    and refitted.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    estimator : estimator
        The restored estimator.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ModelFileError
        If the file is not a skcrater model, is truncated, corrupted or
        edited (a checksum differs), or was written by a newer skcrater.

    See Also
    --------
    save : Write the file.
    read_manifest : Read the metadata and versions without building anything.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skcrater import save, load
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scaler.skcrater"
    >>> _ = save(StandardScaler().fit([[1.0], [3.0]]), path)
    >>> load(path).mean_
    array([2.])
    """
    manifest, members = _read(path)
    reader = _Reader(members, path, manifest.get("versions"))
    return reader.estimator(manifest["estimator"], "estimator")


def read_manifest(path):
    """Return the manifest of a model file, after checking the file.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    manifest : dict
        ``format_version``, ``created`` (UTC, ISO 8601), ``versions`` of the
        libraries that wrote it, the user ``metadata``, ``members`` (checksums)
        and the tagged-JSON ``estimator`` tree (``estimator["class"]`` is the
        class name).

    Raises
    ------
    FileNotFoundError, ModelFileError
        As :func:`load`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skcrater.persistence import save, read_manifest
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scaler.skcrater"
    >>> _ = save(StandardScaler(), path, metadata={"note": "unfitted"})
    >>> manifest = read_manifest(path)
    >>> manifest["estimator"]["class"], manifest["metadata"]
    ('sklearn.preprocessing.StandardScaler', {'note': 'unfitted'})
    """
    return _read(path)[0]


# ------------------------------------------------------------------- encoding
class _Writer:
    """Turns an estimator into tagged JSON plus binary members."""

    def __init__(self):
        self.members = {}
        self.has_networks = False

    def _add(self, folder, suffix, data):
        name = f"{folder}/{len(self.members):03d}{suffix}"
        self.members[name] = data
        return name

    def estimator(self, est, where):
        name = _class_name(est)
        if name is None:
            raise TypeError(
                f"{where}: cannot save a {type(est).__module__}.{type(est).__qualname__} safely; "
                f"skcrater.save supports {', '.join(SUPPORTED_CLASSES)} (nested in any way). "
                "Use pickle or joblib for other estimators (and load pickles only from sources "
                "you trust)."
            )
        params = est.get_params(deep=False)
        state = {key: value for key, value in vars(est).items() if key not in params}
        node = {"class": name, "params": self.value(params, f"{where}.params")}
        if name == _CNN and "model_" in state:
            # format 1 keeps the CNN's network beside its attributes (not among them),
            # so that files stay readable by every skcrater that reads format 1
            node["network"] = self.network(state.pop("model_"))
        node["attributes"] = self.value(state, where)
        return node

    def network(self, model):
        import keras

        self.has_networks = True
        with tempfile.TemporaryDirectory() as tmp:
            file = os.path.join(tmp, "network.keras")
            keras.saving.save_model(model, file)
            return self._add("networks", ".keras", Path(file).read_bytes())

    def value(self, value, where):  # noqa: C901 - one branch per stored type
        from sklearn.base import BaseEstimator

        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int | float) and not isinstance(value, np.generic):
            if isinstance(value, float) and not math.isfinite(value):
                return {"__float__": repr(value)}
            return value
        if isinstance(value, np.ndarray):
            return self.array(value, where)
        if isinstance(value, np.generic):
            if value.dtype.kind not in "biufU":
                raise TypeError(f"{where}: cannot store a NumPy scalar of dtype {value.dtype}.")
            return {"__scalar__": value.dtype.str, "value": self.value(value.item(), where)}
        if isinstance(value, tuple | list):
            items = [self.value(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return {"__tuple__": items} if isinstance(value, tuple) else items
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: self.value(v, f"{where}.{k}") for k, v in value.items()}
            return {
                "__dict__": [
                    [self.value(k, f"{where} key"), self.value(v, f"{where}[{k!r}]")]
                    for k, v in value.items()
                ]
            }
        if isinstance(value, BaseEstimator):
            return {"__estimator__": self.estimator(value, where)}
        if isinstance(value, np.random.RandomState):
            kind, keys, pos, has_gauss, gauss = value.get_state()
            return {"__random_state__": [kind, self.array(keys, where), pos, has_gauss, gauss]}
        if _is_keras_model(value):
            return {"__keras__": self.network(value)}
        raise TypeError(
            f"{where}: cannot save a value of type {type(value).__module__}."
            f"{type(value).__qualname__} safely (only data, NumPy arrays, Keras models and "
            "supported estimators are stored). Use pickle or joblib for such estimators "
            "(and load pickles only from sources you trust)."
        )

    def array(self, array, where):
        if array.dtype.kind == "O":
            if all(isinstance(item, str) for item in array.flat):
                return {"__strings__": array.tolist()}
            raise TypeError(f"{where}: cannot store an object array that is not all strings.")
        if array.dtype.kind not in "biufcUSmM":
            raise TypeError(f"{where}: cannot store an array of dtype {array.dtype}.")
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return {"__ndarray__": self._add("arrays", ".npy", buffer.getvalue())}


class _Reader:
    """Rebuilds an estimator from tagged JSON and the checked members."""

    def __init__(self, members, path, versions):
        self.members = members
        self.path = path
        self.versions = versions if isinstance(versions, dict) else {}

    def member(self, name):
        try:
            return self.members[name]
        except (KeyError, TypeError):
            raise ModelFileError(
                f"{self.path}: the manifest refers to a missing member {name!r}."
            ) from None

    def estimator(self, node, where):
        try:
            cls = _import_class(node["class"])
            params = self.value(node["params"], where)
            attributes = self.value(node["attributes"], where)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise ModelFileError(f"{self.path}: malformed estimator entry at {where}.") from exc
        try:
            est = cls(**params)
        except TypeError as exc:
            raise ModelFileError(
                f"{self.path}: the parameters saved for {node['class']} do not fit this version "
                f"of it ({exc}); load the file with the versions it was saved with: "
                f"{_format_versions(self.versions)}."
            ) from exc
        vars(est).update(attributes)
        if node["class"] == _CNN and "network" in node:
            est.model_ = self.network(node["network"])
        return est

    def network(self, name):
        import keras

        from ._layers import register_layers

        register_layers()  # skcrater's own layers, known to Keras by their registered names
        data = self.member(name)
        with tempfile.TemporaryDirectory() as tmp:
            file = os.path.join(tmp, "network.keras")
            Path(file).write_bytes(data)
            try:
                return keras.saving.load_model(file, safe_mode=True, compile=True)
            except Exception as exc:  # Keras raises many types for a bad archive
                raise ModelFileError(f"{self.path}: cannot read network {name!r}: {exc}") from exc

    def value(self, value, where):  # noqa: C901 - one branch per stored type
        if isinstance(value, list):
            return [self.value(v, where) for v in value]
        if not isinstance(value, dict):
            return value
        tags = [key for key in value if key.startswith("__")]
        if not tags:
            return {k: self.value(v, f"{where}.{k}") for k, v in value.items()}
        tag = tags[0]
        body = value[tag]
        if tag == "__tuple__":
            return tuple(self.value(v, where) for v in body)
        if tag == "__dict__":
            return {self.value(k, where): self.value(v, where) for k, v in body}
        if tag == "__ndarray__":
            return self.array(body)
        if tag == "__strings__":
            return np.array(body, dtype=object)
        if tag == "__scalar__":
            return np.dtype(body).type(value["value"])
        if tag == "__float__":
            return float(body)
        if tag == "__estimator__":
            return self.estimator(body, where)
        if tag == "__keras__":
            return self.network(body)
        if tag == "__random_state__":
            kind, keys, pos, has_gauss, gauss = body
            rng = np.random.RandomState()
            rng.set_state((kind, self.value(keys, where), pos, has_gauss, gauss))
            return rng
        raise ModelFileError(f"{self.path}: unknown entry {tag!r} at {where}.")

    def array(self, name):
        try:
            return np.load(io.BytesIO(self.member(name)), allow_pickle=False)
        except ValueError as exc:
            raise ModelFileError(f"{self.path}: cannot read array {name!r}: {exc}") from exc


# ---------------------------------------------------------------- allow-list
def _split(name):
    module, _, attr = name.rpartition(".")
    return module, attr


def _import_class(name):
    if name not in SUPPORTED_CLASSES:
        raise ModelFileError(
            f"the file holds a {name!r}, which is not one of the classes skcrater loads: "
            f"{', '.join(SUPPORTED_CLASSES)}."
        )
    module, attr = _split(name)
    return getattr(importlib.import_module(module), attr)


def _class_name(est):
    """Public name of ``type(est)`` if it is exactly a supported class, else None."""
    for name in SUPPORTED_CLASSES:
        module, attr = _split(name)
        if attr != type(est).__name__:
            continue
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        if type(est) is cls:
            return name
    return None


def _is_keras_model(value):
    # a Keras model can only exist once Keras is imported: never import it just to check
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(value, keras.Model)


# ----------------------------------------------------------------------- files
def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _check_json(value, where):
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where} must be JSON-serialisable: {exc}") from exc


def _library_versions(has_networks):
    from importlib.metadata import PackageNotFoundError, version

    import skcrater

    versions = {"skcrater": skcrater.__version__}
    for package in ("scikit-learn", "numpy", *(("keras",) if has_networks else ())):
        with contextlib.suppress(PackageNotFoundError):
            versions[package] = version(package)
    return versions


def _format_versions(versions):
    return ", ".join(f"{name} {number}" for name, number in versions.items()) or "unknown"


def _write_atomically(path, members, manifest, *, overwrite):
    with atomic_writer(path, overwrite=overwrite) as file:
        with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(_MANIFEST, json.dumps(manifest, indent=1, allow_nan=False))
            for name, data in members.items():
                archive.writestr(name, data)


def _read(path):
    """Open, check and return (manifest, {member name: bytes})."""
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if _MANIFEST not in names:
                raise ModelFileError(f"{path} is not a skcrater model file (no {_MANIFEST}).")
            manifest = json.loads(archive.read(_MANIFEST))
            _check_manifest(manifest, path)
            expected = set(manifest["members"])
            if names - {_MANIFEST} != expected:
                raise ModelFileError(
                    f"{path} has been altered: its members do not match its manifest "
                    f"(missing {sorted(expected - names)}, unexpected "
                    f"{sorted(names - expected - {_MANIFEST})})."
                )
            members = {name: archive.read(name) for name in sorted(expected)}
    except zipfile.BadZipFile as exc:
        raise ModelFileError(
            f"{path} is not a readable skcrater model file (truncated or corrupted?): {exc}"
        ) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: the manifest is not valid JSON: {exc}") from exc
    for name, data in members.items():
        entry = manifest["members"][name]
        if not isinstance(entry, dict) or entry.get("sha256") != _sha256(data):
            raise ModelFileError(
                f"{path} has been altered or corrupted: checksum of {name!r} "
                "does not match the manifest."
            )
    return manifest, members


def _check_manifest(manifest, path):
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT_NAME:
        raise ModelFileError(f"{path} is not a skcrater model file.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{path}: invalid format_version {version!r}.")
    if version > FORMAT_VERSION:
        written_by = manifest.get("versions", {}).get("skcrater", "a newer version")
        raise ModelFileError(
            f"{path} uses model format version {version}, written by skcrater {written_by}; "
            f"this skcrater reads format versions up to {FORMAT_VERSION}. Upgrade skcrater to "
            "load it."
        )
    for key in ("members", "estimator"):
        if not isinstance(manifest.get(key), dict):
            raise ModelFileError(f"{path}: the manifest has no valid {key!r} entry.")

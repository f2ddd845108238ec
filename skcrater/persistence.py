"""Save and load fitted estimators without pickle.

A model file (``.skcrater`` by convention) is a zip archive holding

* ``manifest.json``: the format name and version, the versions of skcrater,
  scikit-learn, NumPy (and Keras) that wrote it, optional user metadata, the
  SHA-256 and size of every other member, and the estimator: its class (from
  a fixed allow-list), its parameters and its fitted attributes as tagged
  JSON;
* ``arrays/NNN.npy``: the NumPy arrays, read back with ``allow_pickle=False``;
* ``networks/NNN.keras``: each Keras network in Keras' native format, read
  back in Keras' safe mode, whatever the process-wide setting
  (``keras.config.enable_unsafe_deserialization()`` does not apply).

Loading therefore never unpickles anything and never imports a class that is
not in :data:`SUPPORTED_CLASSES`; Keras' safe mode refuses lambda layers and
objects from outside Keras. The checksums catch truncated, corrupted and
edited files; they are not a signature (whoever can edit the file can also
rewrite them), but even a forged file can only hold data: every member's
size is checked against the manifest and against ``max_size`` before
anything is unpacked, parameters are checked by the estimator's own
constraints, and every malformed entry raises :class:`ModelFileError`.

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
import zlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ._files import atomic_writer, check_destination

__all__ = [
    "save",
    "load",
    "read_manifest",
    "ModelFileError",
    "SUPPORTED_CLASSES",
    "FORMAT_VERSION",
    "MAX_SIZE",
]

#: Version of the file layout written by :func:`save`; :func:`load` reads this
#: version and older ones.
FORMAT_VERSION = 1
_FORMAT_NAME = "skcrater-model"
_MANIFEST = "manifest.json"

#: Default ``max_size`` of :func:`load` and :func:`read_manifest`: the most
#: bytes (1 GiB) a model file may unpack to, manifest and members together.
#: Real models are far smaller (a CNN's network takes a few megabytes); the
#: limit stops a small crafted file from filling the memory.
MAX_SIZE = 2**30

# dtype kinds stored: NumPy arrays (.npy members) and NumPy scalars (JSON)
_ARRAY_KINDS = "biufcUSmM"
_SCALAR_KINDS = "biufU"

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
    "sklearn.ensemble.VotingClassifier",
    "sklearn.preprocessing.LabelEncoder",
)

_CNN = "skcrater.CraterCNNClassifier"
_VOTE = "sklearn.ensemble.VotingClassifier"


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
def save(estimator, path, *, overwrite=False, metadata=None, include_optimizer=True):
    """Save an estimator to a single model file, without pickle.

    The file is written under a temporary name in the destination folder and
    renamed into place only once complete, so an interrupted save never
    leaves a half-written file, nor damages the file it would replace. A
    temporary file that a killed save (``SIGKILL``, a power cut) left beside
    ``path`` is removed by the next save of ``path``.

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
    include_optimizer : bool, default=True
        Store the optimizer state of every Keras network (for Adam, two
        values per weight: about twice the size of the weights). True keeps
        everything: the loaded estimator predicts, and a ``warm_start`` fit
        goes on training exactly where the saved one stopped. False stores
        the networks uncompiled, for estimators that are only used to
        predict: the file is smaller and the loaded estimator predicts
        identically, and can still be cloned, pickled, saved and refitted
        from scratch, but it cannot go on training its network: a
        ``warm_start`` fit raises Keras' ``ValueError`` asking for
        ``compile()``.

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
    writer = _Writer(include_optimizer=include_optimizer)
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


def load(path, *, max_size=MAX_SIZE):
    """Load an estimator saved by :func:`save`.

    Nothing is unpickled and only classes of :data:`SUPPORTED_CLASSES` are
    created; Keras networks are read in Keras' safe mode, even after
    ``keras.config.enable_unsafe_deserialization()``. The sizes of all
    members are checked before any is unpacked, and the parameters by the
    estimators' own constraints. The loaded estimator predicts exactly as
    the saved one, and can be pickled, cloned and refitted.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    max_size : int, default=MAX_SIZE
        The most bytes the file may unpack to (:data:`MAX_SIZE`, 1 GiB);
        raise it for a larger model from a source you trust.

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
        edited (a size or checksum differs), holds a malformed entry or an
        invalid parameter, would unpack to more than ``max_size`` bytes, or
        was written by a newer skcrater.

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
    return _load_with_manifest(path, max_size=max_size)[0]


def _load_with_manifest(path, *, max_size=MAX_SIZE):
    """(:func:`load`'s estimator, :func:`read_manifest`'s manifest), reading the file once."""
    manifest, members = _read(path, max_size)
    reader = _Reader(members, path, manifest.get("versions"))
    try:
        return reader.estimator(manifest["estimator"], "estimator"), manifest
    except RecursionError:
        raise ModelFileError(f"{path}: the manifest is nested too deeply.") from None


def read_manifest(path, *, max_size=MAX_SIZE):
    """Return the manifest of a model file, after checking the file.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    max_size : int, default=MAX_SIZE
        As :func:`load`.

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
    return _read(path, max_size)[0]


# ------------------------------------------------------------------- encoding
class _Writer:
    """Turns an estimator into tagged JSON plus binary members."""

    def __init__(self, include_optimizer=True):
        self.members = {}
        self.has_networks = False
        self.include_optimizer = include_optimizer

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
        if name == _VOTE:
            # the same fitted voters as estimators_, by name: stored once, rebuilt by load
            state.pop("named_estimators_", None)
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
        if not self.include_optimizer:
            model = _uncompiled_copy(model)
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
            if value.dtype.kind not in _SCALAR_KINDS:
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
        if array.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"{where}: cannot store an array of dtype {array.dtype}.")
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return {"__ndarray__": self._add("arrays", ".npy", buffer.getvalue())}


class _Reader:
    """Rebuilds an estimator from tagged JSON and the checked members.

    Whatever the file holds, it either gives an estimator or raises
    :class:`ModelFileError` naming the entry (``where``) and the problem.
    """

    def __init__(self, members, path, versions):
        self.members = members
        self.path = path
        self.versions = versions if isinstance(versions, dict) else {}
        self.decoders = {
            "__tuple__": self._tuple,
            "__dict__": self._dict,
            "__ndarray__": self._ndarray,
            "__strings__": self._strings,
            "__scalar__": self._scalar,
            "__float__": self._float,
            "__estimator__": self._estimator,
            "__keras__": self._keras,
            "__random_state__": self._random_state,
        }

    def member(self, name):
        try:
            return self.members[name]
        except (KeyError, TypeError):
            raise ModelFileError(
                f"{self.path}: the manifest refers to a missing member {name!r}."
            ) from None

    def estimator(self, node, where):
        if not isinstance(node, dict) or not {"class", "params", "attributes"} <= set(node):
            raise ModelFileError(
                f"{self.path}: malformed estimator entry at {where}: it needs a class, "
                "params and attributes."
            )
        cls = _import_class(node["class"])
        params = self.names(node["params"], f"{where}.params")
        attributes = self.names(node["attributes"], where)
        clash = sorted(set(params) & set(attributes))
        if clash:
            raise ModelFileError(
                f"{self.path}: malformed estimator entry at {where}: {clash} are stored both "
                "as parameters and as fitted attributes."
            )
        est = self.construct(cls, node["class"], params, where)
        vars(est).update(attributes)
        if node["class"] == _CNN and "network" in node:
            est.model_ = self.network(node["network"])
        if node["class"] == _VOTE and "estimators_" in attributes:
            est.named_estimators_ = self._voters_by_name(est, where)
        return est

    def _voters_by_name(self, vote, where):
        """A loaded VotingClassifier's ``named_estimators_``, as its ``fit`` sets it."""
        from sklearn.base import BaseEstimator
        from sklearn.utils import Bunch

        fitted = vote.estimators_
        kept = [name for name, est in vote.estimators if est != "drop"]
        if not isinstance(fitted, list) or len(fitted) != len(kept):
            raise ModelFileError(
                f"{self.path}: malformed VotingClassifier at {where}: {len(kept)} voters but "
                f"fitted estimators_ {fitted!r:.200}."
            )
        if not all(isinstance(est, BaseEstimator) for est in fitted):
            raise ModelFileError(
                f"{self.path}: malformed VotingClassifier at {where}: estimators_ must hold "
                "estimators."
            )
        voters = iter(fitted)
        return Bunch(
            **{name: est if est == "drop" else next(voters) for name, est in vote.estimators}
        )

    def names(self, value, where):
        """Decode ``value``, which must give a dict of attribute (or parameter) names."""
        decoded = self.value(value, where)
        if not isinstance(decoded, dict) or not all(
            isinstance(key, str) and key.isidentifier() and not key.startswith("__")
            for key in decoded
        ):
            raise ModelFileError(
                f"{self.path}: malformed entry at {where}: expected a dict of names, got "
                f"{decoded!r:.200}."
            )
        return decoded

    def construct(self, cls, name, params, where):
        """``cls(**params)``, after checking the parameters by the class's own constraints."""
        try:
            est = cls(**params)
        except TypeError as exc:
            raise ModelFileError(
                f"{self.path}: the parameters saved for {name} do not fit this version "
                f"of it ({exc}); load the file with the versions it was saved with: "
                f"{_format_versions(self.versions)}."
            ) from exc
        try:
            # LabelEncoder declares no constraints (it takes no parameter)
            if hasattr(est, "_parameter_constraints"):
                est._validate_params()
        except ValueError as exc:  # sklearn's InvalidParameterError, which names the parameter
            raise ModelFileError(
                f"{self.path}: invalid parameter of the {name} at {where}: {exc} (saved with "
                f"{_format_versions(self.versions)})."
            ) from exc
        return est

    def network(self, name):
        import keras
        from keras.src.saving.serialization_lib import SafeModeScope

        from ._layers import register_layers

        register_layers()  # skcrater's own layers, known to Keras by their registered names
        data = self.member(name)
        with tempfile.TemporaryDirectory() as tmp:
            file = os.path.join(tmp, "network.keras")
            Path(file).write_bytes(data)
            try:
                # safe_mode=True gives way to a process-wide enable_unsafe_deserialization();
                # the scope does not (Keras offers no public equivalent)
                with SafeModeScope(True):
                    return keras.saving.load_model(file, safe_mode=True, compile=True)
            except Exception as exc:  # Keras raises many types for a bad archive
                raise ModelFileError(f"{self.path}: cannot read network {name!r}: {exc}") from exc

    def value(self, value, where):
        if isinstance(value, list):
            return [self.value(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, dict):
            return value
        tags = [key for key in value if key.startswith("__")]
        if not tags:
            return {k: self.value(v, f"{where}.{k}") for k, v in value.items()}
        if len(tags) > 1 or tags[0] not in self.decoders:
            raise ModelFileError(f"{self.path}: unknown entry {tags} at {where}.")
        try:
            return self.decoders[tags[0]](value, where)
        except ModelFileError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, OverflowError) as exc:
            raise ModelFileError(
                f"{self.path}: malformed {tags[0]} entry at {where}: {exc!r}"
            ) from exc

    def _tuple(self, value, where):
        return tuple(self.value(_list(value["__tuple__"]), where))

    def _dict(self, value, where):
        pairs = _list(value["__dict__"])
        return {self.value(k, where): self.value(v, f"{where}[{k!r}]") for k, v in pairs}

    def _ndarray(self, value, where):
        return self.array(value["__ndarray__"])

    def _strings(self, value, where):
        array = np.array(_list(value["__strings__"]), dtype=object)
        if not all(isinstance(item, str) for item in array.flat):
            raise ValueError("expected a (nested) list of strings")
        return array

    def _scalar(self, value, where):
        dtype = np.dtype(_str(value["__scalar__"]))
        if dtype.kind not in _SCALAR_KINDS:
            raise ValueError(f"NumPy scalars of dtype {dtype} are not stored")
        return dtype.type(self.value(value["value"], where))

    def _float(self, value, where):
        return float(_str(value["__float__"]))

    def _estimator(self, value, where):
        return self.estimator(value["__estimator__"], where)

    def _keras(self, value, where):
        return self.network(value["__keras__"])

    def _random_state(self, value, where):
        kind, keys, pos, has_gauss, gauss = _list(value["__random_state__"])
        keys = self.value(keys, where)
        # NumPy checks none of this: a position past the 624 keys reads (and with a
        # large one crashes on) memory outside them
        if kind != "MT19937" or not isinstance(keys, np.ndarray) or keys.shape != (624,):
            raise ValueError("expected the state of an MT19937 generator, with 624 keys")
        if keys.dtype != np.uint32 or not (_is_int(pos) and 0 <= pos <= 624):
            raise ValueError(f"expected uint32 keys and a position in [0, 624], got {pos!r}")
        if has_gauss not in (0, 1) or not isinstance(gauss, float):
            raise ValueError("expected has_gauss 0 or 1 and a float gauss")
        rng = np.random.RandomState()
        rng.set_state((kind, keys, pos, has_gauss, gauss))
        return rng

    def array(self, name):
        try:
            # read_array reads .npy only (np.load would also open an .npz zip archive)
            array = np.lib.format.read_array(io.BytesIO(self.member(name)), allow_pickle=False)
        except (ValueError, EOFError) as exc:
            raise ModelFileError(f"{self.path}: cannot read array {name!r}: {exc}") from exc
        if array.dtype.kind not in _ARRAY_KINDS:
            raise ModelFileError(f"{self.path}: array {name!r} has dtype {array.dtype}.")
        return array


def _list(body):
    if not isinstance(body, list):
        raise TypeError(f"expected a list, got {type(body).__name__}")
    return body


def _str(body):
    if not isinstance(body, str):
        raise TypeError(f"expected a string, got {type(body).__name__}")
    return body


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _uncompiled_copy(model):
    """``model``'s architecture and weights without its compile state (optimizer, loss)."""
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


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


def _read(path, max_size):
    """Open, check and return (manifest, {member name: bytes}).

    Every size is checked before anything is unpacked: the total the archive
    declares against ``max_size``, then each member's as the manifest
    declares it against the archive's. Members are unpacked no further than
    the archive declares.
    """
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    if not _is_int(max_size) or max_size < 1:
        raise ValueError(f"max_size must be a positive integer, got {max_size!r}.")
    try:
        with zipfile.ZipFile(path) as archive:
            entries = _entries(archive, path, max_size)
            manifest = _read_manifest_member(archive, entries[_MANIFEST], path)
            names = _check_sizes(manifest["members"], entries, path)
            members = {name: _unpack(archive, entries[name]) for name in names}
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise ModelFileError(
            f"{path} is not a readable skcrater model file (truncated or corrupted?): {exc}"
        ) from exc
    for name, data in members.items():
        entry = manifest["members"][name]
        if len(data) != entry["size"] or entry.get("sha256") != _sha256(data):
            raise ModelFileError(
                f"{path} has been altered or corrupted: the size or checksum of {name!r} "
                "does not match the manifest."
            )
    return manifest, members


def _entries(archive, path, max_size):
    """``{name: ZipInfo}`` of the archive, refusing what :func:`save` never writes."""
    infos = archive.infolist()
    entries = {info.filename: info for info in infos}
    total = sum(info.file_size for info in infos)
    if total > max_size:
        raise ModelFileError(
            f"{path} unpacks to {total} bytes, more than max_size={max_size}; pass a larger "
            "max_size to load it if you trust its source."
        )
    if _MANIFEST not in entries:
        raise ModelFileError(f"{path} is not a skcrater model file (no {_MANIFEST}).")
    if len(entries) < len(infos):
        raise ModelFileError(f"{path} has been altered: several members have the same name.")
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or (
            info.flag_bits & 0x1  # encrypted
        ):
            raise ModelFileError(
                f"{path}: member {info.filename!r} is encrypted or compressed in a way "
                "skcrater never writes."
            )
    return entries


def _read_manifest_member(archive, info, path):
    try:
        manifest = json.loads(_unpack(archive, info))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{path}: the manifest is not valid JSON: {exc!r}") from None
    _check_manifest(manifest, path)
    return manifest


def _check_sizes(declared, entries, path):
    """Check the declared sizes of the members; return their names."""
    names = sorted(set(entries) - {_MANIFEST})
    if set(names) != set(declared):
        raise ModelFileError(
            f"{path} has been altered: its members do not match its manifest "
            f"(missing {sorted(set(declared) - set(names))}, unexpected "
            f"{sorted(set(names) - set(declared))})."
        )
    for name in names:
        entry = declared[name]
        size = entry.get("size") if isinstance(entry, dict) else None
        if not _is_int(size) or size != entries[name].file_size:
            raise ModelFileError(
                f"{path} has been altered: member {name!r} holds {entries[name].file_size} "
                f"bytes, but the manifest declares {size!r}."
            )
    return names


def _unpack(archive, info):
    # read(size) inflates about size bytes at most, whereas read() inflates up to 1 GiB
    # at once before cutting it to the size the archive declares
    with archive.open(info) as file:
        return file.read(info.file_size)


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

"""skcrater: scikit-learn compatible crater classifiers for small planetary image tiles.

Public names are loaded on first use, so ``import skcrater`` imports neither
TensorFlow nor scikit-learn; TensorFlow is loaded on the first ``fit``.
"""

import importlib

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_LAZY = {
    "CraterCNNClassifier": "skcrater.cnn",
    "SelfTrainingWrapper": "skcrater.self_training",
    "SemiSupervisedKFold": "skcrater.model_selection",
    "TileStandardizer": "skcrater.preprocessing",
    "OptunaSearch": "skcrater.tuning",
    "evaluate": "skcrater.report",
    "write_report": "skcrater.report",
    "save": "skcrater.persistence",
    "load": "skcrater.persistence",
}
_SUBMODULES = (
    "cnn",
    "datasets",
    "detection",
    "model_selection",
    "persistence",
    "preprocessing",
    "report",
    "self_training",
    "tuning",
)

__all__ = [*_LAZY, *_SUBMODULES, "__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"skcrater.{name}")
    else:
        raise AttributeError(f"module 'skcrater' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))

"""Find, measure and score craters in whole images.

Names are loaded on first use, so that ``import skcrater.detection`` stays
quick and imports neither TensorFlow nor pandas.
"""

import importlib

# public name -> module that defines it
_LAZY = {
    "CraterDetector": "skcrater.detection._detector",
    "read_catalogue": "skcrater._imageio",
    "read_image": "skcrater._imageio",
    "check_catalogue": "skcrater.detection._catalogue",
    "match_craters": "skcrater.detection._matching",
    "plot_detections": "skcrater.detection._figures",
    "plot_score_map": "skcrater.detection._figures",
    "plot_detection_pr": "skcrater.detection._figures",
    "write_detection_report": "skcrater.detection._report",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'skcrater.detection' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))

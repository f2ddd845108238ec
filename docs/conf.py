"""Sphinx configuration of the skcrater documentation.

Build with ``make docs`` (warnings are errors and the example gallery runs).
For a quick build that does not run the examples::

    python -m sphinx -D plot_gallery=0 -b html docs docs/_build/html
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

# The examples and doctests train networks on the CPU; keep TensorFlow quiet
# and matplotlib off any display.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

from numpydoc.xref import DEFAULT_LINKS  # noqa: E402

import skcrater  # noqa: E402

project = "skcrater"
author = "skcrater developers"
copyright = "skcrater developers"
release = skcrater.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "skcrater_aliases",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]

# -- autodoc / autosummary / numpydoc ---------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": False, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# Type descriptions become cross-references (plain literals where nothing
# matches), which also keeps names such as ``n_iter_`` from being read as
# reST link targets.
numpydoc_xref_param_type = True
numpydoc_xref_ignore = {
    "of", "or", "and", "shape", "default", "optional", "instance", "object", "like",
    "to", "in", "the", "a", "with", "from", "same", "as", "any", "each", "one", "all",
    "None", "True", "False",
}  # fmt: skip
# numpydoc's default aliases point into the Python and NumPy docs through
# intersphinx, which this offline build does not load: show those as literals.
numpydoc_xref_aliases = {
    name: f"``{name}``"
    for name, target in DEFAULT_LINKS.items()
    if "python:" in target or "numpy:" in target
} | {
    "CraterCNNClassifier": "skcrater.CraterCNNClassifier",
    "SelfTrainingWrapper": "skcrater.SelfTrainingWrapper",
    "TileStandardizer": "skcrater.TileStandardizer",
    "OptunaSearch": "skcrater.OptunaSearch",
    "SemiSupervisedKFold": "skcrater.SemiSupervisedKFold",
    # numpydoc leaves tuple-like types as they are, and a trailing underscore
    # is reST link syntax
    "ndarray of shape (n_features_in_,)": "ndarray of shape ``(n_features_in_,)``",
}
add_module_names = False

# No intersphinx: the documentation builds without network access.

# -- sphinx-gallery ------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "gallery_order.ReadingOrder",
    "download_all_examples": False,
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    "matplotlib_animations": False,
    "reset_modules": ("matplotlib",),
    # skcrater.report draws on figures that pyplot does not track
    "image_scrapers": ("gallery_scrapers.unmanaged_figures", "matplotlib"),
    # "Examples using X" lists on the API pages
    "doc_module": ("skcrater",),
    "backreferences_dir": "generated/backreferences",
}

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skcrater {release}"
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "show_prev_next": True,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path = []
html_show_sourcelink = False

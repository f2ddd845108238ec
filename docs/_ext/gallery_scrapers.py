"""A sphinx-gallery image scraper for figures that pyplot does not manage.

skcrater's plotting functions return :class:`matplotlib.figure.Figure`
objects created without pyplot (so that they never leak), which the default
matplotlib scraper cannot see. This scraper saves every such figure that an
example's code block leaves in a global variable.
"""

from matplotlib.figure import Figure
from sphinx_gallery.scrapers import figure_rst

_SAVED = "_skcrater_gallery_saved"


def unmanaged_figures(block, block_vars, gallery_conf):
    """Save the new unmanaged figures bound in the example's globals."""
    figures = []
    for value in block_vars["example_globals"].values():
        if not isinstance(value, Figure) or getattr(value, _SAVED, False):
            continue
        setattr(value, _SAVED, True)
        # pyplot's figures are the matplotlib scraper's (which runs after this
        # one and closes them, so they must be marked now, while managed)
        if value.canvas.manager is None:
            figures.append(value)
    names = []
    for figure, path in zip(figures, block_vars["image_path_iterator"], strict=False):
        figure.savefig(path, dpi=100)
        names.append(path)
    return figure_rst(names, gallery_conf["src_dir"])

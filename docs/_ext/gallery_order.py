"""Reading order of the example gallery (sphinx-gallery sorts by file name)."""

from pathlib import Path

ORDER = (
    "plot_first_cnn.py",
    "plot_recipe.py",
    "plot_self_training.py",
    "plot_grid_search.py",
    "plot_threshold_tuning.py",
    "plot_optuna_search.py",
    "plot_report.py",
    "plot_detection.py",
)


class ReadingOrder:
    """Sort key: the examples of ``ORDER`` first, in that order, then the rest by name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = Path(filename).name
        rank = ORDER.index(name) if name in ORDER else len(ORDER)
        return (rank, name)

    def __repr__(self):
        return f"<{type(self).__name__}>"

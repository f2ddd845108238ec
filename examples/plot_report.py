"""
=====================
An evaluation report
=====================

:func:`~skcrater.evaluate` scores a fitted classifier on labelled tiles;
:func:`~skcrater.write_report` writes the same metrics, the figures and a
summary of the model to a self-contained HTML page. The figures are also
available one by one in :mod:`skcrater.report`.
"""

# %%
# A fitted classifier
# -------------------
from sklearn.model_selection import train_test_split

from skcrater import CraterCNNClassifier
from skcrater.datasets import make_craters

X, y = make_craters(n_samples=500, image_size=32, random_state=6)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
clf = CraterCNNClassifier.recommended(epochs=15, patience=4, random_state=0).fit(X_train, y_train)

# %%
# Metrics
# -------
# A JSON-serialisable dict. ``best_threshold`` is the F1-optimal threshold
# *on these tiles*: on a test set it is an optimistic guide, not a tuned
# threshold.
from skcrater import evaluate

metrics = evaluate(clf, X_test, y_test)
for name in ("f1", "precision", "recall", "balanced_accuracy", "roc_auc", "log_loss"):
    print(f"{name:>17}: {metrics[name]:.3f}")
print(f"{'best_threshold':>17}: {metrics['best_threshold']:.3f} (F1 {metrics['best_f1']:.3f})")

# %%
# The HTML report
# ---------------
# ``report.html`` embeds every figure, so it can be mailed or archived as a
# single file; the PNGs and ``metrics.json`` are written next to it.
import tempfile

from skcrater import write_report

result = write_report(clf, X_test, y_test, tempfile.mkdtemp(), title="Synthetic craters")
print(result.html.name, sorted(path.name for path in result.figures.values()))

# %%
# The figures
# -----------
# Each figure of the report is a function that draws on a matplotlib Axes,
# or on a new figure when none is given.
import matplotlib.pyplot as plt

from skcrater.report import (
    plot_confusion_matrix,
    plot_examples,
    plot_learning_curve,
    plot_precision_recall,
)

p_test = clf.predict_proba(X_test)[:, 1]
y_pred = clf.predict(X_test)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained")
plot_confusion_matrix(y_test, y_pred, ax=axes[0])
plot_precision_recall(y_test, p_test, ax=axes[1])
plot_learning_curve(clf, ax=axes[2])
plt.show()

# %%
# The tiles the model gets right and wrong, with their ``p(crater)``:
# mistakes are shown worst first.
examples = plot_examples(X_test, y_test, y_pred, p_test)

# sphinx_gallery_thumbnail_number = 1

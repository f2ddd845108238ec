"""
============================
The crater recipe end to end
============================

From tiles to a saved model and a file of predictions, following the
published crater recipe: train a CNN on the labelled tiles, pseudo-label
the unlabelled tiles it is confident are *not* craters, retrain once on
both, and predict. Every step is one skcrater call.
"""

# %%
# The data
# --------
# The course gives labelled tiles, a larger set of unlabelled tiles and the
# test tiles to predict. The synthetic generator gives the same three parts;
# here a labelled test set stands in for the hidden test labels, so that the
# result can be scored.
from sklearn.model_selection import train_test_split

from skcrater.datasets import make_craters

X, y, X_unlabeled = make_craters(n_samples=400, n_unlabeled=400, image_size=32, random_state=1)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
print(f"{len(X_train)} labelled, {len(X_unlabeled)} unlabelled, {len(X_test)} test tiles")

# %%
# Self-training
# -------------
# :class:`~skcrater.SelfTrainingWrapper` fits the network on the labelled
# tiles, predicts the unlabelled ones and adds as class 0 (no crater) those
# it is confident about; then it fits a fresh network on the union
# (``max_iter=1``: one round, as in the recipe). Craters are the majority
# class, so only the confident minority is pseudo-labelled. The recipe asks
# for ``p(no crater) >= 0.75``; this small network, trained on a few hundred
# tiles for a few epochs, is rarely that sure, so this example uses 0.6.
# The network's best epoch is chosen on human labels only, never on
# pseudo-labels.
from skcrater import CraterCNNClassifier, SelfTrainingWrapper

cnn = CraterCNNClassifier.recommended(epochs=15, patience=4, random_state=0)
model = SelfTrainingWrapper(cnn, threshold={0: 0.6}, max_iter=1)
model.fit(X_train, y_train, X_unlabeled=X_unlabeled)
no_crater, crater = model.pseudo_label_counts_[0]
print(f"pseudo-labelled {no_crater} tiles as no crater and {crater} as crater")

# %%
# Evaluation
# ----------
# :func:`~skcrater.evaluate` computes the usual metrics on labelled tiles.
from skcrater import evaluate

metrics = evaluate(model, X_test, y_test)
for name in ("f1", "precision", "recall", "roc_auc"):
    print(f"{name:>9}: {metrics[name]:.3f}")
print("confusion matrix (rows: true no crater / crater):", metrics["confusion_matrix"])

# %%
# Save, load and predict
# ----------------------
# :func:`~skcrater.save` writes the whole fitted model (wrapper and network)
# to one file that :func:`~skcrater.load` reads back without pickle. The
# loaded model predicts exactly as the saved one.
# :func:`~skcrater.datasets.save_predictions` writes the predictions in the
# course's submission format, a 1-D integer ``.npy`` of 0 and 1.
import tempfile
from pathlib import Path

import numpy as np

from skcrater import load, save
from skcrater.datasets import save_predictions

folder = Path(tempfile.mkdtemp())
save(model, folder / "craters.skcrater")
loaded = load(folder / "craters.skcrater")
y_pred = loaded.predict(X_test)
assert np.array_equal(y_pred, model.predict(X_test))
save_predictions(y_pred, folder / "Ytest1.npy")
print(f"{int(y_pred.sum())} of {len(y_pred)} test tiles predicted as craters")

# %%
# The command line trains, saves and predicts from a folder in the course
# layout (its ``--pseudo-label-threshold`` applies to both classes)::
#
#     skcrater train --data DIR --model craters.skcrater --pseudo-label-threshold 0.9
#     skcrater predict --model craters.skcrater --input DIR/Xtest1.npy --output Ytest1.npy

"""
==========================================
Self-training against supervised training
==========================================

Does pseudo-labelling unlabelled tiles help? Compare a supervised CNN with
the same CNN inside :class:`~skcrater.SelfTrainingWrapper`, cross-validated
on the same held-out labelled tiles. :class:`~skcrater.SemiSupervisedKFold`
makes that comparison honest: the unlabelled tiles (label ``-1``) go into
every training fold and never into a test fold.
"""

# %%
# Few labels, many unlabelled tiles
# ---------------------------------
# 240 labelled tiles and 360 unlabelled ones. For scikit-learn's tools the
# unlabelled tiles are rows of ``X`` with the label ``-1``.
import numpy as np

from skcrater.datasets import make_craters

X, y, X_pool = make_craters(n_samples=240, n_unlabeled=360, image_size=32, random_state=2)
X_all = np.concatenate([X, X_pool])
y_all = np.concatenate([y, np.full(len(X_pool), -1)])
labels, counts = np.unique(y_all, return_counts=True)
print(X_all.shape, "label counts:", dict(zip(labels.tolist(), counts.tolist(), strict=True)))

# %%
# The same test folds for both
# ----------------------------
# ``SemiSupervisedKFold(splitter)`` splits the labelled rows with
# ``splitter`` and adds every unlabelled row to every training fold. The
# labelled rows come first in ``X_all``, so its test folds are exactly those
# of ``splitter`` on ``(X, y)``, the folds the supervised model is scored on.
from sklearn.model_selection import StratifiedKFold

from skcrater import SemiSupervisedKFold

splitter = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
semi_cv = SemiSupervisedKFold(splitter)
for (_, test), (_, semi_test) in zip(
    splitter.split(X, y), semi_cv.split(X_all, y_all), strict=True
):
    assert np.array_equal(test, semi_test)
train, test = next(semi_cv.split(X_all, y_all))
print(f"first fold: {len(train)} training rows ({np.sum(y_all[train] == -1)} unlabelled), "
      f"{len(test)} test rows (all labelled)")  # fmt: skip

# %%
# Cross-validation
# ----------------
# The wrapper pseudo-labels the unlabelled tiles whose most probable class
# reaches probability 0.9 and retrains once on the union. Both models are
# scored by the F1 of the crater class on the same held-out human labels.
from sklearn.model_selection import cross_val_score, cross_validate

from skcrater import CraterCNNClassifier, SelfTrainingWrapper

cnn = CraterCNNClassifier.recommended(epochs=15, patience=4, random_state=0)
self_training = SelfTrainingWrapper(cnn, threshold=0.9, max_iter=1)

supervised_f1 = cross_val_score(cnn, X, y, cv=splitter, scoring="f1")
semi = cross_validate(self_training, X_all, y_all, cv=semi_cv, scoring="f1", return_estimator=True)
self_training_f1 = semi["test_score"]
print("supervised    F1 per fold:", supervised_f1.round(3))
print("self-training F1 per fold:", self_training_f1.round(3))
print(f"mean difference {np.mean(self_training_f1 - supervised_f1):+.3f}, "
      f"spread of the differences {np.std(self_training_f1 - supervised_f1):.3f}")  # fmt: skip

# %%
# Fold by fold
# ------------
# Each grey line joins the two scores of one test fold. Weigh the mean
# difference against the spread between folds: a gain smaller than that is
# noise. Judge self-training on your own data, with honest folds such as
# these.
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(4.5, 3.5))
for scores in zip(supervised_f1, self_training_f1, strict=True):
    ax.plot([0, 1], scores, marker="o", color="grey", alpha=0.7)
ax.plot([0, 1], [supervised_f1.mean(), self_training_f1.mean()], marker="s", lw=3,
        color="tab:blue", label="mean")  # fmt: skip
ax.set_xticks([0, 1], ["supervised", "self-training"])
ax.set_ylabel("F1 (crater) on held-out labels")
ax.legend()
plt.show()

# %%
# What was pseudo-labelled
# ------------------------
# Each fold's fitted wrapper reports how many pseudo-labels of each class it
# added (``pseudo_label_counts_``, one row per round).
for fold, fitted in enumerate(semi["estimator"]):
    print(f"fold {fold}: pseudo-labels added (no crater, crater):", fitted.pseudo_label_counts_[0])

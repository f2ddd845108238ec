"""
=====================================================
GridSearchCV over learning rate, epochs and threshold
=====================================================

:class:`~skcrater.CraterCNNClassifier` is a scikit-learn estimator, so
:class:`~sklearn.model_selection.GridSearchCV` searches its parameters like
those of any other classifier. Here: the learning rate, the number of
epochs and the decision threshold, for the F1 score of the crater class.
"""

# %%
# Data and estimator
# ------------------
# Small tiles, a small network and 2 folds keep the 8 candidates quick.
# The preset's learning-rate schedule watches the validation loss, so it is
# switched off with the validation split.
# ``validation_fraction=0`` trains on every tile for exactly ``epochs``
# epochs, so that ``epochs`` is what the search varies (by default the
# classifier keeps its best epoch on a validation split, which makes a large
# ``epochs`` an upper bound rather than a choice).
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

from skcrater import CraterCNNClassifier
from skcrater.datasets import make_craters

X, y = make_craters(n_samples=400, image_size=32, random_state=3)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
cnn = CraterCNNClassifier.recommended(
    conv_filters=(8, 16),
    pool_sizes=(3, 2),
    dense_units=(16,),
    validation_fraction=0,
    patience=None,
    lr_schedule=None,
    random_state=0,
)

# %%
# The search
# ----------
param_grid = {
    "learning_rate": [1e-3, 3e-3],
    "epochs": [4, 10],
    "threshold": [0.5, 0.65],
}
cv = StratifiedKFold(n_splits=2, shuffle=True, random_state=0)
search = GridSearchCV(cnn, param_grid, scoring="f1", cv=cv).fit(X_train, y_train)
print("best parameters:", search.best_params_)
print(f"best cross-validated F1: {search.best_score_:.3f}")
print(f"test F1 of the refitted best model: {search.score(X_test, y_test):.3f}")

# %%
# All candidates
# --------------
import matplotlib.pyplot as plt
import numpy as np

results = search.cv_results_
fig, axes = plt.subplots(1, 2, figsize=(8, 3.5), sharey=True)
for ax, threshold in zip(axes, param_grid["threshold"], strict=True):
    for lr in param_grid["learning_rate"]:
        rows = [
            i
            for i, p in enumerate(results["params"])
            if p["threshold"] == threshold and p["learning_rate"] == lr
        ]
        epochs = [results["params"][i]["epochs"] for i in rows]
        ax.errorbar(epochs, results["mean_test_score"][rows], yerr=results["std_test_score"][rows],
                    marker="o", capsize=3, label=f"learning rate {lr:g}")  # fmt: skip
    ax.set(title=f"threshold {threshold}", xlabel="epochs", xticks=param_grid["epochs"])
axes[0].set_ylabel("mean F1 over 2 folds")
axes[0].legend()
plt.show()

# %%
# Every epoch count and every threshold costs a full training here, although
# neither needs one: one training to the largest epoch count gives every
# smaller one, and one set of held-out probabilities gives every threshold.
# :class:`~skcrater.OptunaSearch` exploits both (see
# :ref:`sphx_glr_auto_examples_plot_optuna_search.py`), and
# :ref:`sphx_glr_auto_examples_plot_threshold_tuning.py` tunes the threshold
# alone.
print(f"{len(results['params'])} candidates x {cv.get_n_splits()} folds = "
      f"{len(results['params']) * cv.get_n_splits()} trainings, plus the refit; "
      f"total fit time {np.sum(results['mean_fit_time']) * cv.get_n_splits():.0f} s")  # fmt: skip

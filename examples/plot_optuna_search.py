"""
====================================================
Optuna search with a storage: resume and share it
====================================================

:class:`~skcrater.OptunaSearch` searches the learning rate with Optuna and
gets two more parameters from every trial without retraining: the number
of epochs (each fold keeps its best epoch) and the decision threshold
(chosen on the held-out probabilities). Its study lives in an Optuna
storage, so a search can be resumed and several workers can share it.
"""

# %%
# Data
# ----
import tempfile
from pathlib import Path

from sklearn.model_selection import train_test_split

from skcrater.datasets import make_craters

X, y = make_craters(n_samples=400, image_size=32, random_state=5)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# A first search, stored in SQLite
# --------------------------------
# Three trials, 3 folds each, up to 10 epochs per fold. The study is written
# to ``study.db``: every finished trial is kept even if the process stops.
from optuna.distributions import FloatDistribution

from skcrater import CraterCNNClassifier, OptunaSearch

storage = f"sqlite:///{Path(tempfile.mkdtemp()) / 'study.db'}"
cnn = CraterCNNClassifier.recommended(patience=3, random_state=0)
space = {"learning_rate": FloatDistribution(3e-4, 1e-2, log=True)}


def make_search(n_trials, random_state):
    return OptunaSearch(
        cnn,
        space,
        cv=3,
        n_trials=n_trials,
        max_epochs=10,
        storage=storage,
        study_name="craters",
        random_state=random_state,
    )


search = make_search(n_trials=3, random_state=0).fit(X_train, y_train)
print("best parameters:", search.best_params_)
print(f"best cross-validated F1: {search.best_score_:.3f}")

# %%
# ``best_params_`` holds the sampled learning rate, the median best epoch of
# the folds and the tuned threshold; ``best_estimator_`` was refitted with
# them on all the training tiles.
print(f"test F1: {search.score(X_test, y_test):.3f}")

# %%
# Resume, or add a worker
# -----------------------
# A new search with the same ``storage`` and ``study_name`` continues the
# study: it runs its own trials and refits the best trial of the whole
# study. This is how an interrupted search resumes, and how workers
# cooperate: run the same script in several terminals (or on several hosts
# with a database server as the storage), each with its own
# ``random_state``, and they share one study while it runs. Here a second
# "worker" adds one trial after the first.
worker = make_search(n_trials=1, random_state=1).fit(X_train, y_train)
print(f"{len(worker.study_.trials)} trials in the study")

# %%
# The trials
# ----------
# Every trial records its threshold, best epoch and per-fold scores as
# Optuna user attributes; Optuna's figures show the search.
import matplotlib.pyplot as plt

for trial in worker.study_.trials:
    attrs, lr = trial.user_attrs, trial.params["learning_rate"]
    if trial.state.name != "COMPLETE":  # pruned, or still running in another worker
        print(f"trial {trial.number}: learning rate {lr:.2g}, {trial.state.name.lower()}")
    else:
        print(
            f"trial {trial.number}: learning rate {lr:.2g}, F1 {trial.value:.3f} "
            f"at threshold {attrs['threshold']:.2f}, best epoch {attrs['best_epoch']}"
        )

worker.plot_optimization_history()
plt.show()

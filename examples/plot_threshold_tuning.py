"""
=========================================
Tuning the decision threshold for F1
=========================================

A classifier calls a tile a crater when ``p(crater) >= threshold``. The
probabilities do not depend on the threshold, so the F1-optimal threshold
can be chosen after training, without retraining, from probabilities of
tiles the model was not trained on.
"""

# %%
# Out-of-fold probabilities
# -------------------------
# ``cross_val_predict`` gives every training tile a probability from a model
# that did not see it. Choosing the threshold on these keeps the test set
# untouched.
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split

from skcrater import CraterCNNClassifier
from skcrater.datasets import make_craters

X, y = make_craters(n_samples=500, image_size=32, random_state=4)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
cnn = CraterCNNClassifier.recommended(epochs=15, patience=4, random_state=0)
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
p_oof = cross_val_predict(cnn, X_train, y_train, cv=cv, method="predict_proba")[:, 1]

# %%
# F1 against the threshold
# ------------------------
# :func:`~skcrater.report.plot_threshold_f1` draws F1, precision and recall
# at every threshold and marks the best F1.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import f1_score

from skcrater.report import plot_threshold_f1

thresholds = np.linspace(0.05, 0.95, 91)
f1 = [f1_score(y_train, p_oof >= t) for t in thresholds]
best = float(thresholds[np.argmax(f1)])
print(f"out-of-fold F1 at 0.5: {f1_score(y_train, p_oof >= 0.5):.3f}; "
      f"best {max(f1):.3f} at threshold {best:.2f}")  # fmt: skip

fig, ax = plt.subplots(figsize=(5.5, 4))
plot_threshold_f1(y_train, p_oof, threshold=0.5, ax=ax)
plt.show()

# %%
# Apply it
# --------
# ``threshold`` is a parameter of the classifier: set it and fit on all the
# training tiles. Only ``predict`` changes; compare on the untouched test
# set.
cnn.fit(X_train, y_train)
p_test = cnn.predict_proba(X_test)[:, 1]
print(f"test F1 at 0.5:            {f1_score(y_test, p_test >= 0.5):.3f}")
cnn.set_params(threshold=best)  # no refit needed: the probabilities stay the same
print(f"test F1 at the tuned {best:.2f}: {f1_score(y_test, cnn.predict(X_test)):.3f}")

# %%
# The same with scikit-learn
# --------------------------
# :class:`~sklearn.model_selection.TunedThresholdClassifierCV` runs the same
# cross-validation and refits on all the training tiles. It applies its own
# ``best_threshold_``; the wrapped classifier's ``threshold`` is ignored.
from sklearn.model_selection import TunedThresholdClassifierCV

tuned = TunedThresholdClassifierCV(cnn, scoring="f1", cv=cv).fit(X_train, y_train)
print(f"TunedThresholdClassifierCV: threshold {tuned.best_threshold_:.2f}, "
      f"test F1 {f1_score(y_test, tuned.predict(X_test)):.3f}")  # fmt: skip

# %%
# :class:`~skcrater.OptunaSearch` does this inside every trial of a
# hyper-parameter search, and :func:`~skcrater.evaluate` reports the best
# threshold on a labelled set (``best_threshold``), an optimistic guide when
# that set is the test set.

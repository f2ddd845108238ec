"""GridSearchCV against skcrater's OptunaSearch on the same search space (JSON on stdout).

Both tune CraterCNNClassifier's learning rate, epochs and decision threshold
for F1 on the HRSC48 West tiles, split by spatial block with
StratifiedGroupKFold (each crater appears in two overlapping tiles, so tiles
of one block must stay in one fold). The grid retrains every (learning rate,
epochs, threshold) combination; OptunaSearch samples the learning rate from
the same range (the first trials from a scrambled Sobol sequence, then TPE),
trains each fold once up to the largest epoch count (keeping the
best-validation-loss epoch, with median pruning) and picks the threshold on
the held-out probabilities among ``--optuna-thresholds`` evenly spaced values
of the grid's threshold range (the grid's values among them), which costs no
training. Epoch counts are
scaled down from the recipe's 50-75 to keep a CPU run under half an hour.

Trained epochs are counted by a Keras callback for the grid and from each
trial's record for Optuna; both include the final refit.

Usage: python benchmarks/bench_tuning.py [--data ../shared/data/hrsc48] [--n-trials 9]
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/hrsc48"))
    parser.add_argument("--n-splits", type=int, default=3)
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3])
    parser.add_argument("--epochs", type=int, nargs="+", default=[4, 8, 12])
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    parser.add_argument("--n-trials", type=int, default=9)
    parser.add_argument(
        "--optuna-thresholds",
        type=int,
        default=21,
        help="evenly spaced threshold candidates for Optuna within the grid's threshold range",
    )
    parser.add_argument("--max-samples", type=int, default=None, help="subsample (smoke runs)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def load(args):
    X = np.load(args.data / "west_X.npy")
    y = np.load(args.data / "west_y.npy")
    groups = np.load(args.data / "west_groups.npy")
    if args.max_samples:
        keep = np.random.default_rng(args.seed).permutation(len(y))[: args.max_samples]
        X, y, groups = X[keep], y[keep], groups[keep]
    return X, y, groups


def epoch_counter():
    import keras

    class EpochCounter(keras.callbacks.Callback):
        count = 0

        def on_epoch_end(self, epoch, logs=None):
            self.count += 1

    return EpochCounter()


def run_grid(args, X, y, groups, cv):
    from sklearn.model_selection import GridSearchCV

    from skcrater import CraterCNNClassifier

    grid = {
        "learning_rate": args.learning_rates,
        "epochs": args.epochs,
        "threshold": args.thresholds,
    }
    search = GridSearchCV(CraterCNNClassifier(random_state=args.seed), grid, scoring="f1", cv=cv)
    counter = epoch_counter()
    start = time.perf_counter()
    search.fit(X, y, groups=groups, callbacks=[counter])
    wall = time.perf_counter() - start
    refit = search.best_estimator_.n_epochs_
    return {
        "fits": len(search.cv_results_["params"]) * args.n_splits + 1,
        "trained_epochs": counter.count,
        "trained_epochs_search": counter.count - refit,
        "wall_s": round(wall, 1),
        "best_cv_f1": round(float(search.best_score_), 4),
        "best_params": search.best_params_,
    }


def optuna_thresholds(args):
    """The grid's threshold range, finely: choosing among them costs no training."""
    low, high = min(args.thresholds), max(args.thresholds)
    return np.round(np.linspace(low, high, args.optuna_thresholds), 6)


def run_optuna(args, X, y, groups, cv):
    import optuna

    from skcrater import CraterCNNClassifier
    from skcrater.tuning import OptunaSearch

    space = {
        "learning_rate": optuna.distributions.FloatDistribution(
            min(args.learning_rates), max(args.learning_rates), log=True
        )
    }
    search = OptunaSearch(
        CraterCNNClassifier(random_state=args.seed),
        space,
        scoring="f1",
        cv=cv,
        n_trials=args.n_trials,
        max_epochs=max(args.epochs),
        thresholds=optuna_thresholds(args),
        random_state=args.seed,
    )
    start = time.perf_counter()
    search.fit(X, y, groups=groups)
    wall = time.perf_counter() - start
    trials = search.study_.trials
    searched = sum(t.user_attrs.get("trained_epochs", 0) for t in trials)
    refit = search.best_estimator_.n_epochs_
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    return {
        "trials": len(trials),
        "pruned": len(pruned),
        "trained_epochs": searched + refit,
        "trained_epochs_search": searched,
        "wall_s": round(wall, 1),
        "best_cv_f1": round(float(search.best_score_), 4),
        "best_params": search.best_params_,
        "fold_best_epochs": search.best_trial_.user_attrs["fold_best_epochs"],
        "trials_table": [
            {
                "lr": round(t.params["learning_rate"], 6),
                "state": t.state.name,
                # a pruned trial's value is its last report (a negated loss), not an F1
                "f1": round(t.value, 4) if t.state.name == "COMPLETE" else None,
                "threshold": t.user_attrs.get("threshold"),
                "best_epoch": t.user_attrs.get("best_epoch"),
                "epochs": t.user_attrs.get("trained_epochs"),
            }
            for t in trials
        ],
    }


def main():
    from sklearn.model_selection import StratifiedGroupKFold

    args = parse_args()
    X, y, groups = load(args)
    cv = StratifiedGroupKFold(n_splits=args.n_splits)
    optuna_result = run_optuna(args, X, y, groups, cv)
    grid_result = run_grid(args, X, y, groups, cv)
    ratio = grid_result["trained_epochs"] / optuna_result["trained_epochs"]
    result = {
        "data": str(args.data),
        "n_samples": int(len(y)),
        "cv": f"StratifiedGroupKFold(n_splits={args.n_splits}) on west_groups",
        "space": {
            "learning_rate": args.learning_rates,
            "epochs": args.epochs,
            "threshold": args.thresholds,
        },
        "optuna_threshold_candidates": optuna_thresholds(args).tolist(),
        "grid_search": grid_result,
        "optuna_search": optuna_result,
        "epochs_ratio_grid_over_optuna": round(ratio, 2),
        "target_met": bool(ratio >= 3 and optuna_result["best_cv_f1"] >= grid_result["best_cv_f1"]),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Cross-validated quality of crater classifiers on real HRSC tiles.

Every score comes from human-labelled tiles of held-out spatial blocks
(StratifiedGroupKFold on ``west_groups.npy``): the two windows of one crater
and neighbouring windows never straddle training and test. The unlabelled
pool only ever joins the training side of a fold; the CNN's internal
validation split (best epoch, early stopping) is drawn from the labelled
training tiles only (SelfTrainingWrapper routes it so).

With ``--dataset cohen28`` it scores instead across regions on real 28x28
crater candidates (``../shared/data/cohen28``): every configuration is trained
on West and scored on Center, once per seed; Center's labels never reach
training.

Usage::

    nice -n 10 python benchmarks/bench_quality.py --data ../shared/data/hrsc48 \\
        --repeats 1 --configs logreg recipe recommended --exposure --wall-time
    # time to train on all tiles only, three alternating rounds
    python benchmarks/bench_quality.py --configs --wall-time recipe recommended \\
        --wall-time-rounds 3
    # Cohen28, West -> Center, seeds 0-2
    nice -n 10 python benchmarks/bench_quality.py --dataset cohen28 \\
        --data ../shared/data/cohen28 --seeds 0 1 2 \\
        --configs logreg_cv recipe_cnn recommended

Prints one JSON document (also written to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import f1_score, precision_score, recall_score  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV,
    StratifiedGroupKFold,
    StratifiedKFold,
)
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402

from skcrater import CraterCNNClassifier, SelfTrainingWrapper, TileStandardizer  # noqa: E402
from skcrater._images import to_images  # noqa: E402

# Early stopping for the ablations: enough epochs to converge, stop on a stall.
_ABLATION = dict(epochs=60, patience=8, batch_size=64)


def _divide_by_255(X):
    return np.asarray(X, dtype=np.float64) / 255.0


def logreg(scaling="scale"):
    first = TileStandardizer() if scaling == "standardize" else FunctionTransformer(_divide_by_255)
    return make_pipeline(first, LogisticRegression(max_iter=2000))


def logreg_cv(seed):
    """Logistic regression on raw pixels / 255, its C chosen for macro-F1 by an
    inner 5-fold CV on the training tiles only (the fair linear baseline)."""
    inner = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    return GridSearchCV(
        logreg("scale"),
        {"logisticregression__C": np.logspace(-4, 2, 13)},
        cv=inner,
        scoring="f1_macro",
    )


def recipe(seed):
    """The published recipe, one line: default CNN, 75 epochs at lr 3e-4, best
    validation-loss weights; pseudo-label p(crater) < 0.25 as class 0 once;
    retrain a fresh network at lr 4e-4 for 50 epochs; threshold 0.5."""
    return SelfTrainingWrapper(
        CraterCNNClassifier(random_state=seed),
        threshold={0: 0.75},
        max_iter=1,
        retrain_params={"learning_rate": 4e-4, "epochs": 50},
    )


def recommended(seed):
    return CraterCNNClassifier.recommended(random_state=seed)


def cnn(seed, **params):
    return CraterCNNClassifier(**{**_ABLATION, **params}, random_state=seed)


def _ablations():
    std_bn = dict(preprocessing="standardize", batch_norm=True, learning_rate=1e-3)
    wide = dict(
        preprocessing="standardize",
        conv_filters=(32, 64),
        dense_units=(32,),
        dropout=0.3,
        learning_rate=1e-3,
    )
    ud = dict(wide, augment="flip_ud")
    ud_p12 = dict(ud, lr_schedule="plateau", patience=12)
    return {
        "cnn_recipe_net_es": dict(),
        "cnn_standardize": dict(preprocessing="standardize"),
        "cnn_std_bn": std_bn,
        "cnn_std_bn_wide": dict(wide, batch_norm=True),
        "cnn_wide": wide,
        "cnn_wide_flip_ud": dict(wide, augment="flip_ud"),
        "cnn_wide_flip_lr": dict(wide, augment="flip_lr"),
        "cnn_wide_flips": dict(wide, augment="flips"),
        "cnn_wide_dihedral": dict(wide, augment="dihedral"),
        "cnn_wide_balanced": dict(wide, class_weight="balanced"),
        "cnn_wide_plateau": dict(wide, lr_schedule="plateau"),
        "cnn_wide_cosine": dict(wide, lr_schedule="cosine", epochs=40, patience=None),
        "cnn_wide_bs32": dict(wide, batch_size=32),
        "cnn_wide_3blocks": dict(
            wide, conv_filters=(32, 64, 64), pool_sizes=(2, 2, 2), padding="same"
        ),
        "cnn_wide_scale": dict(wide, preprocessing="scale"),
        "cnn_ud_scale": dict(ud, preprocessing="scale"),
        "cnn_ud_plateau_p12": dict(ud, lr_schedule="plateau", patience=12),
        "cnn_ud_balanced": dict(ud, class_weight="balanced"),
        "cnn_ud_bs32": dict(ud, batch_size=32),
        "cnn_ud_3blocks": dict(ud, conv_filters=(32, 64, 64), pool_sizes=(2, 2, 2), padding="same"),
        "cnn_ud_dense64": dict(ud, dense_units=(64,), dropout=0.5),
        "cnn_ud_bn_p15": dict(ud, batch_norm=True, patience=15),
        "cnn_ud_p12_bs32": dict(ud_p12, batch_size=32),
        "cnn_ud_p12_balanced": dict(ud_p12, class_weight="balanced"),
        "cnn_ud_p12_dense64": dict(ud_p12, dense_units=(64,), dropout=0.5),
        "cnn_ud_p20_e100": dict(ud_p12, patience=20, epochs=100),
        "cnn_ud_p12_shift4": dict(ud_p12, max_shift=4),
        "cnn_ud_p12_shift8": dict(ud_p12, max_shift=8),
        "cnn_ud_cos30": dict(ud, lr_schedule="cosine", epochs=30, patience=None),
        "cnn_ud_plateau_p8": dict(ud, lr_schedule="plateau", patience=8),
        # a narrow first convolution: most of the cost is at full resolution
        "cnn_c16x64_ud_p12": dict(ud_p12, conv_filters=(16, 64)),
        "cnn_c16x64_ud_p12_shift4": dict(ud_p12, conv_filters=(16, 64), max_shift=4),
        # the recipe's narrower, cheaper network (conv 16/32, pools 3/2) with the same training
        "cnn_mid_ud_p12": dict(ud_p12, conv_filters=(16, 32)),
        "cnn_mid_ud_p12_shift4": dict(ud_p12, conv_filters=(16, 32), max_shift=4),
        "cnn_recipenet_ud_p12": dict(ud_p12, conv_filters=(16, 32), dense_units=(8,), dropout=0.5),
        "cnn_p12_shift4": dict(wide, lr_schedule="plateau", patience=12, max_shift=4),
    }


def _preset_variants():
    """Changes to the recommended preset, screened on repeats 2-4, folds it was not chosen on.

    The ``rec_`` variants change one thing in the earlier, two-block preset
    (``rec_2blocks`` is that preset itself; ``rec_3b_64_p321`` is the current
    one); the ``rec3_`` ones change one thing in the three-block variant
    ``rec_3b_p322``. Each spells out its network, so that it does not change
    with the preset.
    """
    two = dict(conv_filters=(16, 64), pool_sizes=(3, 2), padding="valid")
    three = dict(conv_filters=(16, 32, 64), pool_sizes=(3, 2, 2), padding="same")
    # the previous preset's two blocks, then a third convolution on their 6x6 maps
    # with no pooling after it: a third of rec_3b_64_p322's arithmetic
    p321 = dict(two, conv_filters=(16, 64, 64), pool_sizes=(3, 2, 1))
    return {
        "rec_2blocks": two,
        "rec_bs32": dict(two, batch_size=32),
        "rec_val10": dict(two, validation_fraction=0.1),
        "rec_3blocks": dict(three, pool_sizes=(2, 2, 2)),
        # pooling by 3 first, as the preset does: the second and third stages
        # then run on 16x16 and 8x8 maps, which keeps the cost down
        "rec_3b_p322": three,
        "rec_3b_64_p322": dict(three, conv_filters=(16, 64, 64)),
        "rec_3b_64_p321": p321,
        "rec_3b_64_p321_p10": dict(p321, patience=10),
        "rec_3b_128_p321": dict(p321, conv_filters=(16, 64, 128)),
        "rec_3b_64_p321_dense64": dict(p321, dense_units=(64,), dropout=0.5),
        "rec_c24x64": dict(two, conv_filters=(24, 64)),
        "rec_wide": dict(two, conv_filters=(32, 64)),
        # no validation split: every labelled tile is trained on, for a fixed
        # number of epochs under a cosine decay instead of early stopping
        "rec_noval_cos45": dict(
            two, validation_fraction=0.0, patience=None, lr_schedule="cosine", epochs=45
        ),
        "rec_noval_cos60": dict(
            two, validation_fraction=0.0, patience=None, lr_schedule="cosine", epochs=60
        ),
        "rec3_val10": dict(three, validation_fraction=0.1),
        "rec3_bs32": dict(three, batch_size=32),
        "rec3_bs128": dict(three, batch_size=128),
        "rec3_p16_e80": dict(three, patience=16, epochs=80),
        "rec3_dense64": dict(three, dense_units=(64,), dropout=0.5),
        "rec3_shift6": dict(three, max_shift=6),
        "rec3_lr2e3": dict(three, learning_rate=2e-3),
        # a shorter budget, to train within half the recipe's time
        "rec3_p10_e50": dict(three, patience=10, epochs=50),
    }


#: Changes to the recommended preset screened on Cohen28 (28x28 tiles) before it
#: enlarged small tiles; each spells out its pools and keeps the tiles' own size,
#: so that it does not change with the preset's rules.
_COHEN28_VARIANTS = {
    # the fixed pools of the 48 px preset: a 28 px tile ends as a 1x1 map
    "rec_p321": dict(pool_sizes=(3, 2, 1)),
    # what pool_sizes="auto" resolves to at 28 px: a 4x4 last map
    "rec_p311": dict(pool_sizes=(3, 1, 1)),
    "rec_p311_dense64": dict(pool_sizes=(3, 1, 1), dense_units=(64,), dropout=0.5),
    "rec_p211": dict(pool_sizes=(2, 1, 1)),
    "rec_p221": dict(pool_sizes=(2, 2, 1)),
    "rec_p311_shift2": dict(pool_sizes=(3, 1, 1), max_shift=2),
    "rec_p311_shift0": dict(pool_sizes=(3, 1, 1), max_shift=0),
    "rec_p311_scale": dict(pool_sizes=(3, 1, 1), preprocessing="scale"),
    "rec_p311_flips": dict(pool_sizes=(3, 1, 1), augment="flips"),
    "rec_p311_wide": dict(pool_sizes=(3, 1, 1), conv_filters=(32, 64, 64)),
    # the preset before upsample_to: 28 px tiles pooled (3, 1, 1) as they are, 4 px shifts
    "rec_no_upsample": dict(pool_sizes="auto"),
}
_COHEN28_VARIANTS = {name: dict(v, upsample_to=None) for name, v in _COHEN28_VARIANTS.items()}


#: Suffix of a configuration whose validation split (best epoch, early stopping)
#: holds out whole spatial blocks, so that no tile's overlapping twin is trained on.
GROUP_VALIDATION = "_groupval"


def make_estimator(name, seed):
    name = name.removesuffix(GROUP_VALIDATION)
    variants = _preset_variants()
    if name in variants:
        return CraterCNNClassifier.recommended(**variants[name], random_state=seed)

    if name in _COHEN28_VARIANTS:
        return CraterCNNClassifier.recommended(**_COHEN28_VARIANTS[name], random_state=seed)
    if name == "logreg":
        return logreg("scale")
    if name == "logreg_cv":
        return logreg_cv(seed)
    if name == "recipe_cnn":
        # the recipe's network and training alone, without its self-training round
        return CraterCNNClassifier(random_state=seed)
    if name == "logreg_standardize":
        return logreg("standardize")
    if name == "recipe":
        return recipe(seed)
    if name == "recommended":
        return recommended(seed)
    if name == "recommended_selftrain":
        return SelfTrainingWrapper(
            CraterCNNClassifier.recommended(random_state=seed), threshold={0: 0.75}, max_iter=1
        )
    if name == "recommended_selftrain_both":
        return SelfTrainingWrapper(
            CraterCNNClassifier.recommended(random_state=seed), threshold=0.9, max_iter=1
        )
    return cnn(seed, **_ablations()[name])


def _fit(estimator, X, y, U, groups=None):
    if isinstance(estimator, SelfTrainingWrapper):
        return estimator.fit(X, y, X_unlabeled=U)
    if groups is not None:
        cv = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)
        train, val = next(cv.split(X, y, groups))
        return estimator.fit(X[train], y[train], validation_data=(X[val], y[val]))
    return estimator.fit(X, y)


def _epochs(estimator):
    # for a SelfTrainingWrapper, the final fit's epochs only: earlier rounds are not kept
    inner = getattr(estimator, "estimator_", estimator)
    return getattr(inner, "n_epochs_", None)


def _scores(y_true, y_pred):
    return {
        "f1": f1_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, average="macro"),
        "precision": precision_score(y_true, y_pred, zero_division=0),
        "recall": recall_score(y_true, y_pred),
    }


#: Post-hoc diagnostics of a fitted model, no retraining: fixed decision thresholds.
_THRESHOLDS = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65)


def _flip_ud(X):
    images, _ = to_images(X)
    return images[:, ::-1].reshape(len(X), -1)


def _post_hoc(estimator, X, y):
    """Macro-F1 at other fixed thresholds, and averaged over up-down mirrored copies
    (test-time augmentation), for a model already fitted."""
    if not isinstance(getattr(estimator, "estimator_", estimator), CraterCNNClassifier):
        return {}
    p = estimator.predict_proba(X)[:, 1]
    p_tta = 0.5 * (p + estimator.predict_proba(_flip_ud(X))[:, 1])
    out = {f"macro_f1_t{t}": f1_score(y, p >= t, average="macro") for t in _THRESHOLDS}
    out.update(
        {f"macro_f1_tta_t{t}": f1_score(y, p_tta >= t, average="macro") for t in _THRESHOLDS}
    )
    return out


def exposure_variants(X):
    """Held-out tiles under other exposures: darkened and contrast-reduced."""
    X = X.astype(np.float64)
    mean = X.mean(axis=1, keepdims=True)
    return {
        "as_is": X,
        "darker_x0.5": X * 0.5,
        "contrast_x0.5": mean + 0.5 * (X - mean),
        "dark_low_contrast": 0.6 * (mean + 0.5 * (X - mean)),
    }


def cross_validate(name, data, *, repeats, folds, exposure, log, max_folds=None):
    X, y, groups, U = data
    rows, exp_rows = [], []
    for repeat in repeats:
        cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=repeat)
        for fold, (train, test) in enumerate(cv.split(X, y, groups)):
            if max_folds is not None and fold >= max_folds:
                break
            est = make_estimator(name, seed=1000 * repeat + fold)
            start = time.perf_counter()
            group_val = groups[train] if name.endswith(GROUP_VALIDATION) else None
            _fit(est, X[train], y[train], U, group_val)
            seconds = time.perf_counter() - start
            row = _scores(y[test], est.predict(X[test]))
            row.update(seconds=seconds, epochs=_epochs(est), repeat=repeat, fold=fold)
            row.update(_post_hoc(est, X[test], y[test]))
            rows.append(row)
            log(f"{name} r{repeat} f{fold}: macro_f1={row['macro_f1']:.3f} {seconds:.0f}s")
            if exposure:
                exp_rows.append(
                    {
                        k: _scores(y[test], est.predict(v))
                        for k, v in exposure_variants(X[test]).items()
                    }
                )
    return _summary(rows, exp_rows)


def _summary(rows, exp_rows):
    out = {}
    for key in ("f1", "macro_f1", "precision", "recall", "seconds"):
        values = np.array([r[key] for r in rows], dtype=float)
        out[key] = round(float(values.mean()), 4)
        out[f"{key}_std"] = round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 4)
    for key in sorted(k for k in rows[0] if k.startswith("macro_f1_t")):
        out[f"post_hoc_{key}"] = round(float(np.mean([r[key] for r in rows])), 4)
    epochs = [r["epochs"] for r in rows if r["epochs"] is not None]
    out["epochs_mean"] = round(float(np.mean(epochs)), 1) if epochs else None
    out["n_fits"] = len(rows)
    out["per_fold_macro_f1"] = [round(r["macro_f1"], 4) for r in rows]
    if exp_rows:
        out["exposure_macro_f1"] = {
            k: round(float(np.mean([e[k]["macro_f1"] for e in exp_rows])), 4) for k in exp_rows[0]
        }
    return out


def wall_time(names, data, log, rounds=1):
    """Seconds to train each configuration on all labelled + unlabelled tiles.

    After an untimed warm-up fit, the configurations take turns, ``rounds``
    times, so that a slow spell of the machine falls on all of them; the
    median of the rounds is reported.
    """
    X, y, _, U = data
    # TensorFlow's one-off start-up costs would otherwise fall on the first fit
    CraterCNNClassifier(epochs=1, random_state=0).fit(X[:256], y[:256])
    runs = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            est = make_estimator(name, seed=0)
            start = time.perf_counter()
            _fit(est, X, y, U)
            runs[name].append((round(time.perf_counter() - start, 1), _epochs(est)))
            log(f"wall time {name}: {runs[name][-1][0]} s, {runs[name][-1][1]} epochs")
    return {
        name: {
            "seconds": float(np.median([sec for sec, _ in r])),
            "seconds_per_round": [sec for sec, _ in r],
            "epochs": r[0][1],
        }
        for name, r in runs.items()
    }


def across_regions(names, data_dir, seeds, log):
    """Train on West, score on Center, once per seed (Cohen28)."""
    d = Path(data_dir)
    X, y = np.load(d / "west_X.npy"), np.load(d / "west_y.npy")
    X_test, y_test = np.load(d / "center_X.npy"), np.load(d / "center_y.npy")
    out = {}
    for name in names:
        rows = []
        for seed in seeds:
            est = make_estimator(name, seed=seed)
            start = time.perf_counter()
            est.fit(X, y)  # Center's tiles never reach fit
            seconds = time.perf_counter() - start
            row = _scores(y_test, est.predict(X_test))
            row.update(seconds=seconds, epochs=_epochs(est), seed=seed)
            row.update(_post_hoc(est, X_test, y_test))
            if isinstance(est, GridSearchCV):
                row["C"] = float(est.best_params_["logisticregression__C"])
            if hasattr(est, "pool_sizes_"):
                row["pool_sizes"] = list(est.pool_sizes_)
            rows.append(row)
            log(f"{name} seed {seed}: macro_f1={row['macro_f1']:.3f} {seconds:.0f}s")
        summary = _summary(rows, [])
        summary["per_seed_macro_f1"] = summary.pop("per_fold_macro_f1")
        for key in ("C", "pool_sizes"):
            if key in rows[0]:
                summary[key] = [r[key] for r in rows]
        out[name] = summary
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("hrsc48", "cohen28"), default="hrsc48")
    parser.add_argument("--data", default=None, help="default: ../shared/data/DATASET")
    parser.add_argument(
        "--seeds", type=int, nargs="*", default=[0, 1, 2], help="cohen28: one fit per seed"
    )
    parser.add_argument(
        "--configs",
        nargs="*",
        default=None,
        help="default: logreg recipe recommended (hrsc48), logreg_cv recipe_cnn recommended "
        "(cohen28)",
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--first-repeat", type=int, default=0, help="shuffle seed of the first repeat (new folds)"
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--max-folds", type=int, help="cheap protocol: only the first folds of each repeat"
    )
    parser.add_argument("--exposure", action="store_true", help="also score re-exposed tiles")
    parser.add_argument("--wall-time", nargs="*", default=None, help="configs to time on all data")
    parser.add_argument(
        "--wall-time-rounds", type=int, default=1, help="times each --wall-time config is trained"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    d = Path(args.data or f"../shared/data/{args.dataset}")
    if args.configs is None:
        across = args.dataset == "cohen28"
        args.configs = ["logreg_cv", "recipe_cnn"] if across else ["logreg", "recipe"]
        args.configs.append("recommended")
    if args.dataset == "cohen28":
        result = {
            "data": str(d),
            "protocol": (
                "train on West (all labelled tiles), score on Center; one fit per seed; "
                "Center's labels never used in training"
            ),
            "seeds": args.seeds,
            "machine": f"{platform.machine()} {os.cpu_count()} cpus",
            "configs": across_regions(args.configs, d, args.seeds, log),
        }
        text = json.dumps(result, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text + "\n")
        return

    data = tuple(
        np.load(d / f)
        for f in ("west_X.npy", "west_y.npy", "west_groups.npy", "west_unlabeled_X.npy")
    )

    result = {
        "data": str(d),
        "protocol": (
            f"{args.repeats} x {args.folds}-fold StratifiedGroupKFold by spatial block; scores on "
            "human-labelled held-out tiles only; unlabelled pool only in training folds"
        ),
        "repeats": args.repeats,
        "first_repeat": args.first_repeat,
        "folds": args.folds,
        "max_folds": args.max_folds,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "configs": {},
    }
    for name in args.configs:
        result["configs"][name] = cross_validate(
            name,
            data,
            repeats=range(args.first_repeat, args.first_repeat + args.repeats),
            folds=args.folds,
            exposure=args.exposure,
            log=log,
            max_folds=args.max_folds,
        )
    if args.wall_time is not None:
        result["wall_time_full_data"] = wall_time(
            args.wall_time or args.configs, data, log, args.wall_time_rounds
        )
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

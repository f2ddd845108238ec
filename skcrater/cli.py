"""The ``skcrater`` command line: demo, train, predict, report, tune, fit-detector, detect.

Examples
--------
>>> from skcrater.cli import build_parser
>>> args = build_parser().parse_args(["predict", "--model", "m.skcrater",
...                                   "--input", "Xtest1.npy", "--output", "y.npy"])
>>> args.command, args.overwrite
('predict', False)

Heavy imports (TensorFlow, scikit-learn, matplotlib, Optuna) happen inside the
sub-command that needs them, so ``skcrater --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from . import __version__
from ._files import check_destination, refuse_existing

__all__ = ["main", "build_parser"]

#: How a user of the command line allows replacing a file.
_OVERWRITE = "pass --overwrite"

_DATA_HELP = (
    "folder of labelled tiles: the course layout (Xtrain1.npy, Ytrain1.npy, optional "
    "Xtrain1_extra.npy, Xtest1.npy) or the HRSC48 layout (west_X.npy, west_y.npy, "
    "west_groups.npy, optional west_unlabeled_X.npy)"
)


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _unit_float(text):
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _prior_value(text):
    """``em``, or a share strictly between 0 and 1 (``--unlabeled-prior``)."""
    if text == "em":
        return text
    message = f"must be 'em' or a number in (0, 1), got {text}"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(message) from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(message)
    return value


def _add_preset_options(parser, recommended):
    """``--recommended`` / ``--recipe``: which CraterCNNClassifier to start from.

    ``recommended`` is the command's default; both flags are accepted either
    way, so that scripts written for an older default keep working.
    """
    presets = parser.add_mutually_exclusive_group()
    default = " (the default)"
    presets.add_argument(
        "--recommended",
        action="store_true",
        default=recommended,
        help="start from CraterCNNClassifier.recommended()" + (default if recommended else ""),
    )
    presets.add_argument(
        "--recipe",
        dest="recommended",
        action="store_false",
        help="start from the published recipe's network, CraterCNNClassifier()"
        + ("" if recommended else default),
    )


def _add_model_options(parser, recommended=False, presets=True):
    group = parser.add_argument_group("model (CraterCNNClassifier hyperparameters)")
    if presets:
        _add_preset_options(group, recommended)
    group.add_argument("--epochs", type=_positive_int, help="maximum training epochs")
    group.add_argument("--learning-rate", type=float, help="Adam learning rate")
    group.add_argument("--batch-size", type=_positive_int, help="mini-batch size")
    group.add_argument("--threshold", type=_unit_float, help="decision threshold on p(crater)")
    group.add_argument("--patience", type=_positive_int, help="early-stopping patience (epochs)")
    group.add_argument(
        "--preprocessing",
        choices=("scale", "standardize", "local"),
        help="grey-level scaling of tiles",
    )
    group.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")


def _base_classifier(args, **params):
    """The preset that ``--recommended`` / ``--recipe`` chose, with ``params`` set."""
    from .cnn import CraterCNNClassifier

    if args.recommended:
        return CraterCNNClassifier.recommended(**params)
    return CraterCNNClassifier(**params)


def _preset_name(args):
    """Said before training, since the default preset is not the published recipe."""
    if args.recommended:
        return "CraterCNNClassifier.recommended()"
    return "the recipe, CraterCNNClassifier()"


def _make_classifier(args, **defaults):
    clf = _base_classifier(args)
    chosen = {
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "threshold": args.threshold,
        "patience": args.patience,
        "preprocessing": args.preprocessing,
    }
    params = {**defaults, **{k: v for k, v in chosen.items() if v is not None}}
    verbose = 1 if sys.stdout.isatty() else 2
    return clf.set_params(random_state=args.random_state, verbose=verbose, **params)


def build_parser():
    """Return the ``argparse`` parser of the ``skcrater`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
        With the sub-commands ``demo``, ``train``, ``predict``, ``report``
        and ``tune``.

    Examples
    --------
    >>> from skcrater.cli import build_parser
    >>> build_parser().parse_args(["demo", "--epochs", "5"]).epochs
    5
    """
    parser = argparse.ArgumentParser(
        prog="skcrater",
        description="Crater / no-crater classification of small grayscale planetary tiles.",
        epilog="exit status: 0 success, 2 bad usage, input or output file, 1 internal error "
        "(a bug: the traceback is printed), 130 interrupted (Ctrl+C)",
    )
    parser.add_argument("--version", action="version", version=f"skcrater {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="train recommended() and the recipe on the same synthetic craters and compare them "
        "(about two minutes on 2 CPU cores)",
        description="Train CraterCNNClassifier.recommended() and the published recipe, "
        "CraterCNNClassifier(), on the same synthetic split and compare them on its test tiles; "
        "the model options apply to both.",
    )
    demo.add_argument("--n-samples", type=_positive_int, default=1500, help="synthetic tiles")
    demo.add_argument("--image-size", type=_positive_int, default=48, help="tile side in pixels")
    demo.add_argument("--out", type=Path, help="folder for metrics.json and the HTML report")
    _add_model_options(demo, presets=False)
    demo.set_defaults(handler=_cmd_demo)

    train = sub.add_parser("train", help="train on a folder in the course layout and save")
    train.add_argument("--data", type=Path, required=True, help=_DATA_HELP)
    train.add_argument("--model", type=Path, required=True, help="where to save the model")
    train.add_argument(
        "--pseudo-label-threshold",
        type=_unit_float,
        help="self-train on Xtrain1_extra.npy (and Xtest1.npy with --use-test-pool), "
        "pseudo-labelling tiles whose top class probability reaches this value",
    )
    train.add_argument(
        "--unlabeled-weight",
        type=_positive_float,
        help="consistency training (FixMatch-style) on the unlabelled tiles of Xtrain1_extra.npy "
        "(and Xtest1.npy with --use-test-pool), with this weight beside the labelled loss",
    )
    train.add_argument(
        "--unlabeled-prior",
        type=_prior_value,
        metavar="em|SHARE",
        help="correct the probabilities for another share of craters than the labelled "
        "tiles': 'em' estimates it on the unlabelled tiles of Xtrain1_extra.npy (and "
        "Xtest1.npy with --use-test-pool), a number in (0, 1) gives it",
    )
    train.add_argument(
        "--use-test-pool",
        action="store_true",
        help="also use Xtest1.npy as unlabelled tiles (with --pseudo-label-threshold, "
        "--unlabeled-weight or --unlabeled-prior em)",
    )
    train.add_argument("--overwrite", action="store_true", help="replace an existing model")
    _add_tensorboard_option(train, "the training run")
    _add_model_options(train, recommended=True)
    train.set_defaults(handler=_cmd_train)

    predict = sub.add_parser("predict", help="predict 0/1 labels for an .npy of tiles")
    predict.add_argument("--model", type=Path, required=True, help="a model saved by train")
    predict.add_argument("--input", type=Path, required=True, help="tiles, e.g. Xtest1.npy")
    predict.add_argument(
        "--output",
        type=Path,
        required=True,
        help="1-D int .npy of 0/1; .npy is added to a name without it, as numpy.save does",
    )
    predict.add_argument("--overwrite", action="store_true", help="replace an existing output")
    predict.set_defaults(handler=_cmd_predict)

    report = sub.add_parser("report", help="write an HTML evaluation report for a saved model")
    report.add_argument("--model", type=Path, required=True, help="a model saved by train")
    _add_report_data_options(report)
    report.add_argument("--out", type=Path, required=True, help="output folder")
    report.add_argument("--overwrite", action="store_true", help="replace existing files")
    report.set_defaults(handler=_cmd_report)

    tune = sub.add_parser("tune", help="Optuna search of learning rate, epochs and threshold")
    tune.add_argument("--data", type=Path, required=True, help=_DATA_HELP)
    tune.add_argument("--n-trials", type=_positive_int, required=True, help="trials to run here")
    tune.add_argument("--max-epochs", type=_positive_int, default=50, help="epochs per trial")
    tune.add_argument("--cv", type=_positive_int, default=3, help="cross-validation folds")
    tune.add_argument(
        "--storage",
        help="where the study lives, shared by every invocation given the same one: a database "
        "URL (sqlite:///study.db) or a journal file path (study.log); default: in memory. The "
        "trial of an invocation killed mid-trial is retried by the next trial started once it "
        "has missed its heartbeats for --grace-period seconds",
    )
    tune.add_argument(
        "--study-name", help="study name in --storage (default with --storage: skcrater-tune)"
    )
    tune.add_argument(
        "--heartbeat-interval",
        type=_positive_int,
        default=60,
        help="with --storage, seconds between the heartbeats of a running trial (default: 60)",
    )
    tune.add_argument(
        "--grace-period",
        type=_positive_int,
        help="with --storage, seconds without a heartbeat after which a running trial is "
        "failed and retried; longer than --heartbeat-interval (default: twice it)",
    )
    tune.add_argument("--timeout", type=float, help="stop starting trials after this many s")
    tune.add_argument(
        "--epochs-progress",
        action="store_true",
        help="print a line per epoch of every fold (default: a line per fold)",
    )
    _add_tensorboard_option(tune, "one run per trial and fold, and the refit")
    tune.add_argument(
        "--architecture", action="store_true", help="also search dropout, kernel size, batch norm"
    )
    tune.add_argument("--model", type=Path, help="save the refitted best model here")
    tune.add_argument("--plots", type=Path, help="folder for optimisation-history PNGs")
    _add_preset_options(tune, recommended=True)
    tune.add_argument("--overwrite", action="store_true", help="replace an existing model")
    tune.add_argument(
        "--random-state",
        type=int,
        default=0,
        help="seed of the networks and, without --storage, of the sampler (default: 0)",
    )
    tune.set_defaults(handler=_cmd_tune)
    _add_detection_commands(sub)
    return parser


def _add_tensorboard_option(parser, runs):
    parser.add_argument(
        "--tensorboard",
        type=Path,
        metavar="DIR",
        help=f"write Keras TensorBoard logs here ({runs}); view with `tensorboard --logdir DIR`",
    )


def _at_least_two(text):
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"needs at least 2 folds, got {text}")
    return value


def _add_report_data_options(report):
    scored = report.add_mutually_exclusive_group(required=True)
    scored.add_argument(
        "--data",
        type=Path,
        help="course-layout folder with labelled tiles; scored as they are (a loud warning "
        "when they are the model's training tiles), or cross-validated with --cv",
    )
    scored.add_argument(
        "--test-data",
        type=Path,
        help="held-out labelled tiles: a course-layout folder, or an X .npy file next to its "
        "labels (Xtest.npy and Ytest.npy)",
    )
    report.add_argument(
        "--cv",
        type=_at_least_two,
        metavar="K",
        help="score --data by K-fold cross-validation of the saved configuration: clones "
        "refitted on K-1 folds predict the remaining one",
    )
    report.add_argument(
        "--groups",
        type=Path,
        help="with --cv: .npy of one group id per labelled tile (e.g. the source image); "
        "no group is split between folds",
    )


def _add_detection_commands(sub):
    fit = sub.add_parser(
        "fit-detector", help="train a crater detector from images and their crater catalogues"
    )
    fit.add_argument(
        "--image", type=Path, action="append", required=True, help="PGM, PNG or TIFF (repeat)"
    )
    fit.add_argument(
        "--catalogue",
        type=Path,
        action="append",
        required=True,
        help="CSV of x, y, diameter in pixels, one per --image, in the same order",
    )
    fit.add_argument("--model", type=Path, required=True, help="where to save the detector")
    fit.add_argument("--window", type=_positive_int, default=48, help="tile side (default: 48)")
    fit.add_argument(
        "--diameter-range",
        type=float,
        nargs=2,
        default=(16.0, 40.0),
        metavar=("LOW", "HIGH"),
        help="crater diameters the window detects, in pixels (default: 16 40)",
    )
    fit.add_argument(
        "--max-diameter", type=float, default=300.0, help="largest crater to look for (px)"
    )
    fit.add_argument("--epochs", type=_positive_int, help="maximum training epochs of the CNN")
    fit.add_argument(
        "--hard-negative-rounds",
        type=int,
        default=0,
        choices=(0, 1, 2),
        help="retrain with the detector's own false detections on the training images",
    )
    fit.add_argument(
        "--networks",
        type=_positive_int,
        default=1,
        help="soft vote of this many CNNs of consecutive seeds: a little more accurate, "
        "this many times the training and the scan (default: 1)",
    )
    fit.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    fit.add_argument("--overwrite", action="store_true", help="replace an existing model")
    fit.set_defaults(handler=_cmd_fit_detector)

    detect = sub.add_parser("detect", help="find craters in an image with a saved detector")
    detect.add_argument(
        "--model", type=Path, required=True, help="a detector saved by fit-detector"
    )
    detect.add_argument("--image", type=Path, required=True, help="PGM, PNG or TIFF")
    detect.add_argument("--out", type=Path, required=True, help="CSV of x, y, diameter, score")
    detect.add_argument("--overlay", type=Path, help="PNG of the detections over the image")
    detect.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="folder for an HTML report: the detections over the image, the score map and, "
        "with --catalogue, the metrics and the precision-recall curve",
    )
    detect.add_argument(
        "--catalogue", type=Path, help="known craters: print precision, recall and F1"
    )
    detect.add_argument("--threshold", type=_unit_float, help="smallest score kept")
    detect.add_argument(
        "--min-diameter", type=float, help="with --catalogue: smallest diameter scored (px)"
    )
    detect.add_argument(
        "--max-diameter", type=float, help="with --catalogue: largest diameter scored (px)"
    )
    detect.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    detect.set_defaults(handler=_cmd_detect)


def _print_metrics(metrics):
    for key in ("f1", "precision", "recall", "accuracy", "f1_macro", "roc_auc"):
        if key in metrics:
            print(f"{key:>10}: {metrics[key]:.3f}")
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    print("confusion matrix (rows: true 0/1, columns: predicted 0/1)")
    print(f"  [[{tn:5d} {fp:5d}]\n   [{fn:5d} {tp:5d}]]")


#: The demo's two configurations: (name, ``args.recommended``); the first is the report's.
_DEMO_PRESETS = (("recommended()", True), ("recipe", False))


def _cmd_demo(args):
    from sklearn.model_selection import train_test_split

    from .datasets import make_craters
    from .report import evaluate

    X, y = make_craters(args.n_samples, image_size=args.image_size, random_state=args.random_state)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.random_state
    )
    print(f"synthetic tiles: {len(X_train)} train, {len(X_test)} test, {args.image_size} px")
    fitted, comparison = {}, {}
    for name, recommended in _DEMO_PRESETS:
        clf = _make_classifier(argparse.Namespace(**{**vars(args), "recommended": recommended}))
        start = time.perf_counter()
        clf.fit(X_train, y_train)
        fit_s = time.perf_counter() - start
        epochs = f"{clf.n_epochs_} epochs in {fit_s:.1f} s (best epoch {clf.best_epoch_})"
        print(f"{name}: trained {epochs}")
        metrics = evaluate(clf, X_test, y_test)
        fitted[name] = clf, fit_s, metrics
        comparison[name] = {key: metrics[key] for key in _COMPARED} | {
            "epochs": clf.n_epochs_,
            "fit s": round(fit_s, 1),
        }
    _print_comparison(comparison)
    name = _DEMO_PRESETS[0][0]
    clf, fit_s, metrics = fitted[name]
    print(f"{name} on the test tiles:")
    _print_metrics(metrics)
    if args.out:
        from .report import write_report

        paths = write_report(
            clf,
            X_test,
            y_test,
            args.out,
            title="skcrater demo on synthetic craters: recommended() beside the recipe",
            timings={"fit": fit_s},
            overwrite=True,
            comparison=comparison,
        )
        print(f"report written: {paths.html}")
    return 0


#: The test metrics that the demo's comparison shows.
_COMPARED = ("f1", "precision", "recall", "accuracy")


def _print_comparison(rows):
    """The demo's configurations side by side, one line each."""
    columns = [*_COMPARED, "epochs", "fit s"]
    print("same split, test tiles:")
    print(f"  {'configuration':<15}" + "".join(f"{c:>10}" for c in columns))
    for name, row in rows.items():
        cells = "".join(f"{row[c]:>10.3f}" if c in _COMPARED else f"{row[c]:>10}" for c in columns)
        print(f"  {name:<15}{cells}")


def _cmd_train(args):
    from ._inner import fit_with_callbacks
    from .persistence import save

    data = _load_data(args.data)
    clf = _make_classifier(args)
    pool = _unlabelled_pool(data, args)
    if args.unlabeled_weight is not None:
        clf.set_params(unlabeled_weight=args.unlabeled_weight)
    if args.unlabeled_prior is not None:
        clf.set_params(unlabeled_prior=args.unlabeled_prior)
    estimator, fit_kwargs = clf, {}
    if args.pseudo_label_threshold is not None:
        from .self_training import SelfTrainingWrapper

        estimator = SelfTrainingWrapper(clf, threshold=args.pseudo_label_threshold, max_iter=1)
    if pool is not None:
        fit_kwargs["X_unlabeled"] = pool
    # refuse before, not after, training: a folder, a missing or read-only one, an existing file
    _refuse_outputs([args.model], args.overwrite)
    print(f"training on {len(data.X)} labelled tiles, from {_preset_name(args)}")
    callbacks = []
    if args.tensorboard is not None:
        from ._tensorboard import require_tensorboard, tensorboard_callback

        require_tensorboard("--tensorboard")
        callbacks.append(tensorboard_callback(args.tensorboard))
    start = time.perf_counter()
    fit_with_callbacks(estimator, data.X, data.y, callbacks, **fit_kwargs)
    _print_training_summary(estimator, time.perf_counter() - start, args)
    metadata = {"fit_s": time.perf_counter() - start, "n_train": len(data.y)}
    # lets `report` recognise, and flag, scores on the training tiles
    both, tiles = _data_hashes(data.X, data.y)
    metadata.update(train_sha256=both, train_X_sha256=tiles)
    save(estimator, args.model, overwrite=args.overwrite, metadata=metadata)
    print(f"model saved: {args.model}")
    return 0


def _unlabelled_pool(data, args):
    """The unlabelled tiles that the options ask for, or None when none are asked for."""
    wanted = [
        option
        for option, value in (
            ("--pseudo-label-threshold", args.pseudo_label_threshold),
            ("--unlabeled-weight", args.unlabeled_weight),
            ("--unlabeled-prior em", "em" if args.unlabeled_prior == "em" else None),
        )
        if value is not None
    ]
    if not wanted:
        if args.use_test_pool:
            raise ValueError(
                "--use-test-pool needs --pseudo-label-threshold, --unlabeled-weight or "
                "--unlabeled-prior em"
            )
        return None
    import numpy as np

    pools = [data.X_extra] + ([data.X_test] if args.use_test_pool else [])
    pools = [p for p in pools if p is not None]
    if not pools:
        raise ValueError(
            f"{' and '.join(wanted)} need{'s' if len(wanted) == 1 else ''} unlabelled tiles "
            "in --data: Xtrain1_extra.npy "
            "(course layout) or west_unlabeled_X.npy (HRSC48 layout), or Xtest1.npy with "
            "--use-test-pool"
        )
    return np.concatenate(pools)


def _print_training_summary(estimator, fit_s, args):
    """One block after training: how the network trained and what self-training added."""
    cnn = getattr(estimator, "estimator_", estimator)  # a SelfTrainingWrapper's final network
    history, best = cnn.history_, cnn.best_epoch_
    print("training summary" + ("" if cnn is estimator else " (network of the last round)"))
    print(f"  epochs run:          {cnn.n_epochs_} (best epoch {best})")
    if "val_loss" not in history:
        print("  validation:          none held out")
    for key, name in (
        ("val_loss", "validation loss"),
        ("val_f1", "validation F1"),
        ("val_accuracy", "validation accuracy"),
    ):
        if key in history:
            print(f"  {name + ':':<20} {history[key][best - 1]:.4f} (best epoch)")
    if "unlabeled_share" in history:
        share = history["unlabeled_share"][best - 1]
        print(f"  pseudo-labelled:     {share:.0%} of the unlabelled tiles (best epoch)")
    if getattr(cnn, "unlabeled_prior_", None) is not None:
        how = "estimated on the unlabelled tiles" if args.unlabeled_prior == "em" else "given"
        print(
            f"  share of class {cnn.classes_[1]}:    {cnn.class_prior_[1]:.1%} in training, "
            f"corrected to {cnn.unlabeled_prior_[1]:.1%} ({how})"
        )
    print(f"  fit time:            {fit_s:.1f} s")
    if cnn is not estimator:
        _print_pseudo_labels(estimator, args.pseudo_label_threshold)


def _print_pseudo_labels(wrapper, threshold):
    """Pseudo-labels added per round and class; a round that added none is worth a warning."""
    classes = wrapper.classes_
    for round_, counts in enumerate(wrapper.pseudo_label_counts_, start=1):
        added = ", ".join(f"{n} of class {label}" for label, n in zip(classes, counts, strict=True))
        print(f"  pseudo-labels, round {round_}: {added}")
        if counts.sum() == 0:
            print(
                f"skcrater train: warning: self-training round {round_} added no pseudo-labels: "
                f"no unlabelled tile reached --pseudo-label-threshold {threshold}; try a lower "
                "threshold (the saved model learnt from the labelled tiles only)",
                file=sys.stderr,
            )


def _load_data(folder):
    """The tiles of ``--data``: a folder in the course layout or in the HRSC48 layout.

    Returns a Bunch with ``X``, ``y``, ``X_extra`` (unlabelled tiles or None)
    and ``X_test`` (None for HRSC48, which has no test file).
    """
    from sklearn.utils import Bunch

    from .datasets import load_course_data, load_hrsc48

    folder = Path(folder)
    if (folder / "west_X.npy").is_file():
        data = load_hrsc48(folder)
        return Bunch(X=data.X, y=data.y, X_extra=data.X_unlabeled, X_test=None)
    if folder.is_dir() and not (folder / "Xtrain1.npy").is_file():
        # the public course copy (IST 2024/25) ships without its labelled tiles
        raise FileNotFoundError(
            f"--data {folder} holds no labelled tiles: neither Xtrain1.npy and Ytrain1.npy "
            "(course layout) nor west_X.npy, west_y.npy and west_groups.npy (HRSC48 layout); "
            "a public course copy may lack Xtrain1.npy: add the course's Xtrain1.npy and "
            "Ytrain1.npy, or give the HRSC48 folder (shared/data/hrsc48)"
        )
    return load_course_data(folder)


def _cmd_predict(args):
    import numpy as np

    from .datasets import save_predictions
    from .persistence import load

    if not args.input.is_file():
        raise FileNotFoundError(f"input file not found: {args.input}")
    # the name save_predictions writes, checked before the model is loaded
    output = args.output
    if output.suffix != ".npy":
        output = output.with_name(output.name + ".npy")
    _refuse_outputs([output], args.overwrite)
    X = _load_tiles(args.input)
    model = load(args.model)
    y_pred = model.predict(X)
    written = save_predictions(y_pred, output, overwrite=args.overwrite)
    counts = np.bincount(np.asarray(y_pred, dtype=int), minlength=2)
    print(f"{len(y_pred)} predictions ({counts[1]} craters) written to {written}")
    return 0


def _load_tiles(path):
    """The tiles of ``--input``; labels given by mistake get a message about tiles."""
    import numpy as np

    X = np.load(path, allow_pickle=False)
    # a 1-D array (or a single column) is one value per tile: labels, such as Ytrain1.npy
    if X.ndim == 1 or (X.ndim == 2 and X.shape[1] == 1):
        raise ValueError(
            f"--input {path} holds an array of shape {X.shape}, one value per row, which looks "
            "like labels, not tiles: give the tiles, one flattened image per row "
            "(n, side * side) or (n, side, side), such as Xtest1.npy"
        )
    return X


def _cmd_report(args):
    from .persistence import _load_with_manifest
    from .report import write_report

    if args.cv is None and args.groups is not None:
        raise ValueError("--groups needs --cv")
    if args.cv is not None and args.data is None:
        raise ValueError("--cv cross-validates --data; it cannot be combined with --test-data")
    option = "--data" if args.data is not None else "--test-data"
    X, y, files = _labelled_tiles(args.data or args.test_data, option)
    groups = None if args.groups is None else _groups(args.groups, len(y), option)
    model, manifest = _load_with_manifest(args.model)
    metadata = manifest.get("metadata", {})
    provenance = _report_provenance(args, X, y, files, metadata, groups)
    proba = None
    if args.cv is not None:
        proba = _out_of_fold_proba(model, X, y, args.cv, groups)
    elif "warning" in provenance:
        print(f"skcrater report: WARNING: {provenance['warning']}", file=sys.stderr)
    fit_s = metadata.get("fit_s")
    paths = write_report(
        model,
        X,
        y,
        args.out,
        title=f"skcrater report: {args.model.name}",
        timings=None if fit_s is None else {"fit": fit_s},
        overwrite=args.overwrite,
        proba=proba,
        provenance=provenance,
    )
    summary = {k: v for k, v in paths.metrics.items() if k != "threshold_curve"}
    print(json.dumps(summary, indent=2))
    print(f"scored: {provenance['scored']}")
    print(f"report written: {paths.html}")
    return 0


def _sha256(*arrays):
    """Hex SHA-256 of arrays' dtypes, shapes and bytes: equal exactly for equal data."""
    return _digest(arrays).hexdigest()


def _data_hashes(X, y):
    """(SHA-256 of ``X`` and ``y``, of ``X`` alone), reading ``X`` once."""
    tiles = _digest([X])
    return _digest([y], tiles.copy()).hexdigest(), tiles.hexdigest()


def _digest(arrays, digest=None):
    """``digest`` (a new SHA-256) updated with each array's dtype, shape and bytes."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256() if digest is None else digest
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.data)  # the buffer itself: no copy of a large X
    return digest


def _labelled_tiles(path, option):
    """X, y and their file names from a course or HRSC48 folder or an X .npy beside its Y."""
    import numpy as np

    if path.is_dir():
        data = _load_data(path)
        hrsc48 = (path / "west_X.npy").is_file()
        names = ("west_X.npy", "west_y.npy") if hrsc48 else ("Xtrain1.npy", "Ytrain1.npy")
        return data.X, data.y, tuple(path / name for name in names)
    if not path.is_file():
        raise FileNotFoundError(f"{option} {path}: no such folder or file")
    if not path.name.startswith("X"):
        raise ValueError(f"{option} {path}: name the X file, e.g. Xtest.npy beside Ytest.npy")
    labels = path.with_name("Y" + path.name[1:])
    if not labels.is_file():
        raise FileNotFoundError(f"{option} {path}: its labels {labels.name} are missing")
    X, y = np.load(path, allow_pickle=False), np.load(labels, allow_pickle=False)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            f"{option}: {labels.name} must hold one label per tile of {path.name} "
            f"({len(X)}); it has shape {y.shape}"
        )
    return X, y, (path, labels)


def _groups(path, n_tiles, option):
    """The --groups ids, checked against the tiles before any training."""
    import numpy as np

    groups = np.load(path, allow_pickle=False)
    if groups.ndim != 1 or len(groups) != n_tiles:
        raise ValueError(
            f"--groups {path.name} has shape {groups.shape}, but {option} has {n_tiles} "
            "labelled tiles: give one group id per tile"
        )
    return groups


def _out_of_fold_proba(model, X, y, k, groups):
    """Probabilities of clones of ``model`` on the folds they did not see."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict

    splitter = StratifiedKFold if groups is None else StratifiedGroupKFold
    folds = splitter(n_splits=k, shuffle=True, random_state=0)
    print(f"cross-validating the saved configuration: {k} folds of {len(y)} tiles")
    return cross_val_predict(clone(model), X, y, cv=folds, groups=groups, method="predict_proba")


def _report_provenance(args, X, y, files, metadata, groups):
    """What `report` scores and how, for the HTML page and metrics.json."""
    import shlex

    digest, tiles = _data_hashes(X, y)
    names = " + ".join(str(f) for f in files)
    provenance = {"data": f"{names} (sha256 {digest[:12]}, {len(y)} tiles)"}
    # the tiles alone suffice: the same tiles relabelled are still not held out
    trained_on = digest == metadata.get("train_sha256") or tiles == metadata.get("train_X_sha256")
    provenance.update(_how_scored(args, trained_on, "train_sha256" in metadata))
    if groups is not None:
        provenance["groups"] = f"{args.groups} (sha256 {_sha256(groups)[:12]})"
    trained = metadata.get("train_sha256")
    provenance["model"] = str(args.model) + (
        f" (trained on sha256 {trained[:12]})" if trained else ""
    )
    provenance["command"] = shlex.join(["skcrater", *sys.argv[1:]])
    return provenance


def _how_scored(args, trained_on, recorded):
    """The ``scored`` entry of the provenance, and the ``warning`` on training tiles."""
    if args.cv is not None:
        # refitted clones never score a tile they were trained on, training tiles or not
        splitter = "StratifiedKFold" if args.groups is None else "StratifiedGroupKFold"
        return {
            "scored": f"cross-validated, {args.cv} folds ({splitter}): out-of-fold scores "
            "of the saved configuration refitted on the other folds"
        }
    if trained_on:
        return {
            "scored": "training tiles (not held out)",
            "warning": "these are the training tiles: the scores are not held out and "
            "overstate how the model does on new tiles; pass --test-data, or --cv K",
        }
    if recorded:
        return {"scored": "held out: not the training tiles recorded in the model file"}
    return {"scored": "unknown: the model file records no training-data hash"}


def _cmd_tune(args):
    from .tuning import OptunaSearch, default_search_space

    if args.model is not None:  # fail before the search, not after it
        _refuse_outputs([args.model], args.overwrite)
    if args.grace_period is not None and args.grace_period <= args.heartbeat_interval:
        raise ValueError(
            f"--grace-period {args.grace_period} must be longer than --heartbeat-interval "
            f"{args.heartbeat_interval}: otherwise live workers' trials are failed as stale"
        )
    data = _load_data(args.data)
    cnn = _base_classifier(args, random_state=args.random_state)
    shared = args.storage is not None
    search = OptunaSearch(
        cnn,
        default_search_space(cnn, architecture=args.architecture),
        cv=args.cv,
        n_trials=args.n_trials,
        timeout=args.timeout,
        max_epochs=args.max_epochs,
        storage=args.storage,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        study_name=args.study_name or ("skcrater-tune" if shared else None),
        # invocations sharing a study must not all draw the same seeded trials
        random_state=None if shared else args.random_state,
        refit=args.model is not None,
        tensorboard_dir=args.tensorboard,
        show_progress_bar=sys.stderr.isatty(),
        verbose=2 if args.epochs_progress else 1,
    )
    print(
        f"tuning on {len(data.X)} labelled tiles, {args.n_trials} trial(s) here, "
        f"from {_preset_name(args)}"
    )
    search.fit(data.X, data.y)
    print(
        json.dumps(
            {
                "study": search.study_.study_name,
                "trials": len(search.study_.trials),
                "best_cv_f1": round(search.best_score_, 4),
                "best_params": search.best_params_,
            },
            indent=2,
        )
    )
    if args.model is not None:
        from .persistence import save

        save(search.best_estimator_, args.model, overwrite=args.overwrite)
        print(f"model saved: {args.model}")
    if args.plots is not None:
        args.plots.mkdir(parents=True, exist_ok=True)
        search.plot_optimization_history(args.plots / "optimization_history.png")
        if len(search.study_.trials) > 1:
            search.plot_param_importances(args.plots / "param_importances.png")
        print(f"figures written to {args.plots}")
    return 0


def _cmd_fit_detector(args):
    from .detection import CraterDetector, read_catalogue, read_image
    from .detection._detector import default_classifier, seed_vote
    from .persistence import save

    if len(args.image) != len(args.catalogue):
        raise ValueError(
            f"got {len(args.image)} --image and {len(args.catalogue)} --catalogue; give one "
            "catalogue per image, in the same order"
        )
    _refuse_outputs([args.model], args.overwrite)
    images = [read_image(path) for path in args.image]
    catalogues = [
        read_catalogue(path, image_shape=image.shape)
        for path, image in zip(args.catalogue, images, strict=True)
    ]
    cnn = default_classifier(verbose=2, **({} if args.epochs is None else {"epochs": args.epochs}))
    seeds = range(args.random_state, args.random_state + args.networks)
    detector = CraterDetector(
        seed_vote(cnn, seeds),
        window=args.window,
        diameter_range=tuple(args.diameter_range),
        max_diameter=args.max_diameter,
        hard_negative_rounds=args.hard_negative_rounds,
        random_state=args.random_state,
        verbose=1,
    )
    start = time.perf_counter()
    detector.fit(images, catalogues)
    seconds = time.perf_counter() - start
    counts = ", ".join(f"{n} {kind}" for kind, n in detector.training_counts_.items())
    print(f"trained in {seconds:.0f} s on {counts} windows")
    _print_validation(detector)
    metadata = {"fit_s": seconds, "images": [str(p) for p in args.image]}
    save(detector, args.model, overwrite=args.overwrite, metadata=metadata)
    print(f"detector saved: {args.model}")
    return 0


def _print_validation(detector):
    """What the held-out rows of the training images gave."""
    found = detector.validation_
    if not found:
        print(f"score threshold {detector.threshold_:.3g} (no validation rows)")
        return
    print(
        f"score threshold {detector.threshold_:.3g}, chosen on {found['rows']} held-out rows "
        f"({found['craters']} catalogued craters): precision {found['precision']:.3f}, "
        f"recall {found['recall']:.3f}, F1 {found['f1']:.3f}; median diameter error "
        f"{found['median_diameter_error']:.0%} ({found['uncalibrated_median_diameter_error']:.0%} "
        "before calibration)"
    )


def _cmd_detect(args):
    from .detection import CraterDetector, read_catalogue, read_image
    from .persistence import load

    _refuse_outputs([args.out, *([args.overlay] if args.overlay else [])], args.overwrite)
    if args.report is not None:
        from .detection._report import _check_report_destination

        _check_report_destination(args.report, overwrite=args.overwrite, how=_OVERWRITE)
    detector = load(args.model)
    if not isinstance(detector, CraterDetector):
        raise ValueError(f"{args.model} holds a {type(detector).__name__}, not a CraterDetector")
    if args.threshold is not None:
        detector.set_params(threshold=args.threshold)
    image = read_image(args.image)
    catalogue = None
    if args.catalogue is not None:
        catalogue = read_catalogue(args.catalogue, image_shape=image.shape)
    detector.set_params(verbose=1)
    start = time.perf_counter()
    craters = detector.predict(image)[0]
    seconds = time.perf_counter() - start
    print(f"{len(craters)} craters found in {seconds:.1f} s")
    _write_table(craters, args.out, args.overwrite)
    print(f"craters written: {args.out}")
    match = _print_match(craters, catalogue, args) if catalogue is not None else None
    if args.overlay:
        from ._files import write_bytes
        from .detection import plot_detections
        from .report import _png

        fig = plot_detections(image, craters, catalogue, match=match, title=args.image.name)
        write_bytes(args.overlay, _png(fig), overwrite=args.overwrite)
        print(f"overlay written: {args.overlay}")
    if args.report:
        from .detection import write_detection_report

        # the detections and the catalogue already at hand: nothing is detected twice
        scored = {"min_diameter": args.min_diameter, "max_diameter": args.max_diameter}
        result = write_detection_report(
            detector,
            image,
            args.report,
            catalogue=catalogue,
            detections=craters,
            timings={"predict": seconds},
            title=f"skcrater detection report: {args.image.name}",
            overwrite=args.overwrite,
            **(scored if catalogue is not None else {}),
        )
        print(f"report written: {result.html}")
    return 0


def _refuse_outputs(paths, overwrite):
    """Refuse, before any work, outputs that could not be written.

    A folder given as a file, a missing or read-only folder to write in and
    an existing file (without ``--overwrite``) all raise ``OSError``
    subclasses, which :func:`main` prints in one line (exit status 2).
    """
    for path in paths:
        try:
            check_destination(path, overwrite=overwrite)
        except FileExistsError:
            refuse_existing([path], overwrite=overwrite, how=_OVERWRITE)
        folder = Path(path).parent
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"Cannot write {path}: folder {folder} is not writable.")


def _write_table(table, path, overwrite):
    from ._files import write_bytes

    write_bytes(path, table.to_csv(index=False, float_format="%.6g").encode(), overwrite=overwrite)


def _print_match(craters, catalogue, args):
    from .detection import match_craters

    match = match_craters(
        craters, catalogue, min_diameter=args.min_diameter, max_diameter=args.max_diameter
    )
    print(
        f"against {args.catalogue.name}: precision {match.precision:.3f}, recall "
        f"{match.recall:.3f}, F1 {match.f1:.3f}, average precision {match.average_precision:.3f} "
        f"({match.tp} matched, {match.fp} false, {match.fn} missed)"
    )
    return match


#: What the user gave wrong (an argument, the data, a file): one line, exit status 2.
# ImportError: an optional package that an option needs is not installed
_USER_ERRORS = (ValueError, TypeError, OSError, ImportError)

#: The default TF_CPP_MIN_LOG_LEVEL: none of TensorFlow's C++ log. Its ERROR lines are
#: notices too (no GPU, an op attribute from a newer Keras); a real failure raises a
#: Python exception, which is printed as usual. A user's own setting wins.
_TF_LOG_LEVEL = "3"

#: TensorFlow's C++ start-up lines (absl/glog format: severity letter, date, time).
_ABSL_LINE = re.compile(r"([IWEF])\d{4} \d\d:\d\d:\d\d")


def _quiet_tensorflow():
    """Import TensorFlow without its start-up chatter on standard error.

    TensorFlow 2.21 prints its oneDNN, CUDA and CPU-feature notices through
    absl before ``TF_CPP_MIN_LOG_LEVEL`` is read, so the variable alone
    cannot hide them: standard error (file descriptor 2, where the C++
    library writes) is captured during the import and the first device
    query, and every line of it that the log level hides is dropped. The
    rest (a real error, a Python warning) is written back. A user's own
    ``TF_CPP_MIN_LOG_LEVEL`` is respected (``0`` shows everything, ``2``
    the C++ errors); the default is ``3`` (``_TF_LOG_LEVEL``).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", _TF_LOG_LEVEL)
    if "tensorflow" in sys.modules:
        return
    try:
        level = int(os.environ["TF_CPP_MIN_LOG_LEVEL"])
    except ValueError:
        level = 0
    sys.stderr.flush()
    with tempfile.TemporaryFile() as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # loads the CUDA libraries, and their notices
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            lines = log.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _is_chatter(line, level)))
    if level >= 2:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)


def _is_chatter(line, level):
    found = _ABSL_LINE.match(line)
    if found:
        severity = "IWEF".index(found.group(1))
        # no GPU is no error for a CPU-capable tool: TensorFlow then runs on the CPU
        return severity < level or (level >= 2 and "failed call to cuInit" in line)
    return level >= 1 and line.startswith(
        ("WARNING: All log messages before absl::InitializeLog", "To enable the following")
    )


def _in_cli_words(exc):
    """The message of ``exc`` with the library's argument names as the options to pass."""
    return (
        str(exc)
        .replace("overwrite=True", "--overwrite")
        .replace("tensorboard_dir", "--tensorboard")
    )


def main(argv=None):
    """Run the ``skcrater`` command line.

    Exit status, one rule for every command:

    * 0: success (also ``--help`` and ``--version``);
    * 2: a usage or input error: a bad argument (argparse's usage message),
      missing or unreadable data, an output that exists (without
      ``--overwrite``) or cannot be written. ``ValueError``, ``TypeError``,
      ``OSError`` (``FileNotFoundError``, ``FileExistsError``,
      ``IsADirectoryError``, ``PermissionError``, ...) and ``ImportError``
      (an optional package that an option needs) print one line,
      ``skcrater COMMAND: error: ...``, on standard error, no traceback;
    * 1: an internal error, a bug: a one-line hint, then the traceback;
    * 130: interrupted (Ctrl+C); files are written atomically, so none is
      left half written.

    TensorFlow's start-up notices are hidden (see ``TF_CPP_MIN_LOG_LEVEL``).

    Parameters
    ----------
    argv : list of str, default=None
        The arguments; None reads ``sys.argv``.

    Returns
    -------
    status : int
        0, 2 or 130 as above; an internal error is raised again after its hint.

    Examples
    --------
    >>> from skcrater.cli import main
    >>> main(["predict", "--model", "m", "--input", "missing.npy", "--output", "y.npy"])
    2
    """
    # before anything imports TensorFlow, so that its start-up notices are never printed
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", _TF_LOG_LEVEL)
    args = build_parser().parse_args(argv)
    try:
        _quiet_tensorflow()
        return args.handler(args)
    except KeyboardInterrupt:
        print(f"skcrater {args.command}: interrupted", file=sys.stderr)
        return 130
    except _USER_ERRORS as exc:
        print(f"skcrater {args.command}: error: {_in_cli_words(exc)}", file=sys.stderr)
        return 2
    except Exception:
        print(
            f"skcrater {args.command}: internal error, a bug in skcrater: please report it "
            "with the traceback below",
            file=sys.stderr,
        )
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``skcrater`` command line: demo, train, predict, report and tune.

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
import sys
import time
from pathlib import Path

from ._files import refuse_existing

__all__ = ["main", "build_parser"]

#: How a user of the command line allows replacing a file.
_OVERWRITE = "pass --overwrite"


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _unit_float(text):
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _add_model_options(parser):
    group = parser.add_argument_group("model (CraterCNNClassifier hyperparameters)")
    group.add_argument(
        "--recommended",
        action="store_true",
        help="start from CraterCNNClassifier.recommended() instead of the recipe network",
    )
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


def _make_classifier(args, **defaults):
    from .cnn import CraterCNNClassifier

    clf = CraterCNNClassifier.recommended() if args.recommended else CraterCNNClassifier()
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
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="train and evaluate on synthetic craters (about a minute on 2 CPU cores)"
    )
    demo.add_argument("--n-samples", type=_positive_int, default=1500, help="synthetic tiles")
    demo.add_argument("--image-size", type=_positive_int, default=48, help="tile side in pixels")
    demo.add_argument("--out", type=Path, help="folder for metrics.json and the HTML report")
    _add_model_options(demo)
    demo.set_defaults(handler=_cmd_demo)

    train = sub.add_parser("train", help="train on a folder in the course layout and save")
    train.add_argument("--data", type=Path, required=True, help="folder with Xtrain1.npy, ...")
    train.add_argument("--model", type=Path, required=True, help="where to save the model")
    train.add_argument(
        "--pseudo-label-threshold",
        type=_unit_float,
        help="self-train on Xtrain1_extra.npy (and Xtest1.npy with --use-test-pool), "
        "pseudo-labelling tiles whose top class probability reaches this value",
    )
    train.add_argument("--use-test-pool", action="store_true", help="also pseudo-label Xtest1.npy")
    train.add_argument("--overwrite", action="store_true", help="replace an existing model")
    _add_model_options(train)
    train.set_defaults(handler=_cmd_train)

    predict = sub.add_parser("predict", help="predict 0/1 labels for an .npy of tiles")
    predict.add_argument("--model", type=Path, required=True, help="a model saved by train")
    predict.add_argument("--input", type=Path, required=True, help="tiles, e.g. Xtest1.npy")
    predict.add_argument("--output", type=Path, required=True, help="1-D int .npy of 0/1")
    predict.add_argument("--overwrite", action="store_true", help="replace an existing output")
    predict.set_defaults(handler=_cmd_predict)

    report = sub.add_parser("report", help="write an HTML evaluation report for a saved model")
    report.add_argument("--model", type=Path, required=True, help="a model saved by train")
    report.add_argument(
        "--data", type=Path, required=True, help="course-layout folder with labelled tiles"
    )
    report.add_argument("--out", type=Path, required=True, help="output folder")
    report.add_argument("--overwrite", action="store_true", help="replace existing files")
    report.set_defaults(handler=_cmd_report)

    tune = sub.add_parser("tune", help="Optuna search of learning rate, epochs and threshold")
    tune.add_argument("--data", type=Path, required=True, help="course-layout folder")
    tune.add_argument("--n-trials", type=_positive_int, required=True, help="trials to run here")
    tune.add_argument("--max-epochs", type=_positive_int, default=50, help="epochs per trial")
    tune.add_argument("--cv", type=_positive_int, default=3, help="cross-validation folds")
    tune.add_argument(
        "--storage",
        help="where the study lives, shared by every invocation given the same one: a database "
        "URL (sqlite:///study.db) or a journal file path (study.log); default: in memory",
    )
    tune.add_argument(
        "--study-name", help="study name in --storage (default with --storage: skcrater-tune)"
    )
    tune.add_argument("--timeout", type=float, help="stop starting trials after this many s")
    tune.add_argument(
        "--architecture", action="store_true", help="also search dropout, kernel size, batch norm"
    )
    tune.add_argument("--model", type=Path, help="save the refitted best model here")
    tune.add_argument("--plots", type=Path, help="folder for optimisation-history PNGs")
    tune.add_argument("--overwrite", action="store_true", help="replace an existing model")
    tune.add_argument(
        "--random-state",
        type=int,
        default=0,
        help="seed of the networks and, without --storage, of the sampler (default: 0)",
    )
    tune.set_defaults(handler=_cmd_tune)
    return parser


def _print_metrics(metrics):
    for key in ("f1", "precision", "recall", "accuracy", "f1_macro", "roc_auc"):
        if key in metrics:
            print(f"{key:>10}: {metrics[key]:.3f}")
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    print("confusion matrix (rows: true 0/1, columns: predicted 0/1)")
    print(f"  [[{tn:5d} {fp:5d}]\n   [{fn:5d} {tp:5d}]]")


def _cmd_demo(args):
    from sklearn.model_selection import train_test_split

    from .datasets import make_craters
    from .report import evaluate

    X, y = make_craters(args.n_samples, image_size=args.image_size, random_state=args.random_state)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.random_state
    )
    print(f"synthetic tiles: {len(X_train)} train, {len(X_test)} test, {args.image_size} px")
    clf = _make_classifier(args, epochs=40, patience=8, batch_size=64, learning_rate=1e-3)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    print(f"trained {clf.n_epochs_} epochs in {fit_s:.1f} s (best epoch {clf.best_epoch_})")
    metrics = evaluate(clf, X_test, y_test)
    _print_metrics(metrics)
    if args.out:
        from .report import write_report

        paths = write_report(
            clf,
            X_test,
            y_test,
            args.out,
            title="skcrater demo on synthetic craters",
            timings={"fit": fit_s},
            overwrite=True,
        )
        print(f"report written: {paths.html}")
    return 0


def _cmd_train(args):
    from .datasets import load_course_data
    from .persistence import save

    data = load_course_data(args.data)
    clf = _make_classifier(args)
    if args.pseudo_label_threshold is None:
        estimator, fit_kwargs = clf, {}
    else:
        import numpy as np

        from .self_training import SelfTrainingWrapper

        pools = [data.X_extra] + ([data.X_test] if args.use_test_pool else [])
        pools = [p for p in pools if p is not None]
        if not pools:
            raise SystemExit("--pseudo-label-threshold needs Xtrain1_extra.npy in --data")
        estimator = SelfTrainingWrapper(clf, threshold=args.pseudo_label_threshold, max_iter=1)
        fit_kwargs = {"X_unlabeled": np.concatenate(pools)}
    # refuse before, not after, training
    refuse_existing([args.model], overwrite=args.overwrite, how=_OVERWRITE)
    print(f"training on {len(data.X)} labelled tiles")
    start = time.perf_counter()
    estimator.fit(data.X, data.y, **fit_kwargs)
    metadata = {"fit_s": time.perf_counter() - start, "n_train": len(data.y)}
    save(estimator, args.model, overwrite=args.overwrite, metadata=metadata)
    print(f"model saved: {args.model}")
    return 0


def _cmd_predict(args):
    import numpy as np

    from .datasets import save_predictions
    from .persistence import load

    if not args.input.is_file():
        raise SystemExit(f"input file not found: {args.input}")
    model = load(args.model)
    X = np.load(args.input, allow_pickle=False)
    y_pred = model.predict(X)
    save_predictions(y_pred, args.output, overwrite=args.overwrite)
    counts = np.bincount(np.asarray(y_pred, dtype=int), minlength=2)
    print(f"{len(y_pred)} predictions ({counts[1]} craters) written to {args.output}")
    return 0


def _cmd_report(args):
    from .datasets import load_course_data
    from .persistence import load, read_manifest
    from .report import write_report

    model = load(args.model)
    fit_s = read_manifest(args.model).get("metadata", {}).get("fit_s")
    data = load_course_data(args.data)
    paths = write_report(
        model,
        data.X,
        data.y,
        args.out,
        title=f"skcrater report: {args.model.name}",
        timings=None if fit_s is None else {"fit": fit_s},
        overwrite=args.overwrite,
    )
    summary = {k: v for k, v in paths.metrics.items() if k != "threshold_curve"}
    print(json.dumps(summary, indent=2))
    print(f"report written: {paths.html}")
    return 0


def _cmd_tune(args):
    from .cnn import CraterCNNClassifier
    from .datasets import load_course_data
    from .tuning import OptunaSearch, default_search_space

    if args.model is not None:  # fail before the search, not after it
        refuse_existing([args.model], overwrite=args.overwrite, how=_OVERWRITE)
    data = load_course_data(args.data)
    cnn = CraterCNNClassifier(random_state=args.random_state)
    shared = args.storage is not None
    search = OptunaSearch(
        cnn,
        default_search_space(cnn, architecture=args.architecture),
        cv=args.cv,
        n_trials=args.n_trials,
        timeout=args.timeout,
        max_epochs=args.max_epochs,
        storage=args.storage,
        study_name=args.study_name or ("skcrater-tune" if shared else None),
        # invocations sharing a study must not all draw the same seeded trials
        random_state=None if shared else args.random_state,
        refit=args.model is not None,
        show_progress_bar=sys.stderr.isatty(),
        verbose=1,
    )
    print(f"tuning on {len(data.X)} labelled tiles, {args.n_trials} trial(s) here")
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


def main(argv=None):
    """Run the ``skcrater`` command line.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments; None reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success, 2 when the data, a file or an argument is wrong (the
        message is printed on standard error).

    Examples
    --------
    >>> from skcrater.cli import main
    >>> main(["predict", "--model", "m", "--input", "missing.npy", "--output", "y.npy"])
    Traceback (most recent call last):
    ...
    SystemExit: input file not found: missing.npy
    """
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (FileNotFoundError, FileExistsError, ValueError, TypeError) as exc:
        print(f"skcrater {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

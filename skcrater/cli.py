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
import sys
import time
from pathlib import Path

from ._files import check_destination, refuse_existing

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
        "URL (sqlite:///study.db) or a journal file path (study.log); default: in memory. The "
        "trial of an invocation killed mid-trial is retried by the next trial started once it "
        "has missed its heartbeats for 2 minutes",
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
    _add_detection_commands(sub)
    return parser


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


def _cmd_fit_detector(args):
    from .cnn import CraterCNNClassifier
    from .detection import CraterDetector, read_catalogue, read_image
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
    cnn = CraterCNNClassifier.recommended(
        preprocessing="local",
        class_weight="balanced",
        random_state=args.random_state,
        verbose=2,
        **({} if args.epochs is None else {"epochs": args.epochs}),
    )
    detector = CraterDetector(
        cnn,
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
    """Refuse, before any work, outputs that could not be written."""
    for path in paths:
        try:
            check_destination(path, overwrite=overwrite)
        except FileExistsError:
            refuse_existing([path], overwrite=overwrite, how=_OVERWRITE)


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
    except (FileNotFoundError, FileExistsError, IsADirectoryError, ValueError, TypeError) as exc:
        print(f"skcrater {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

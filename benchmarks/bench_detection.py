"""Crater detection on the real HRSC West mosaic, and the speed and memory of the scan.

The two West images (``tile1_24`` above ``tile1_25``, 200 rows shared) are
joined into one 3200 x 1700 mosaic with one catalogue (the craters of the
shared rows are taken once: from ``tile1_24`` above row 1600, from
``tile1_25`` below). The mosaic is split at row 1600 into an upper and a
lower half; each fold trains a detector on one half, leaving a gap of
``--gap`` rows next to the split, and detects on the other half, so that no
crater that is scored was ever trained on.

Per fold it reports precision, recall, F1 and average precision for craters
of 16-40 px and for all catalogued craters of at least 16 px, at the
detector's own threshold (``threshold="auto"``: chosen on the validation rows
of the training half), at 0.5, and at the best threshold of the test half
itself (an upper bound that no user can choose, for reference); the median
relative diameter error of the matched craters, with and without the
diameter calibration fitted on the validation rows; the time of the
multi-scale scan. With ``--speed`` it
times the dense scan against cutting the windows and calling
``predict_proba`` at the same stride (and their largest difference), and
counts the arithmetic of each, whose ratio is the speed-up the dense scan
would reach at the windows' rate of arithmetic (after the folds, on the
mosaic with the last fold's detector; with no fold, on a synthetic scene
with a briefly trained detector of the same network); with
``--memory SIDE`` the peak memory of ``predict`` on a synthetic SIDE x SIDE
mosaic, in a fresh process; with ``--dask`` the megapixels per second and
the peak memory per worker of ``predict`` on a lazy ``--dask-size`` square
mosaic (tiles of a synthetic scene, never whole in memory) on a
``dask.distributed.LocalCluster`` of each of ``--dask-workers`` sizes.
``--window``, ``--diameter-range``, ``--positives``, ``--rounds`` and
``--ensemble K`` (a soft vote of K networks of consecutive seeds, scanned
densely as the weighted mean of their score maps) screen variants of the
detector.

Usage::

    python benchmarks/bench_detection.py --data ../shared/data/hrsc_scenes --out det.json
    python benchmarks/bench_detection.py --speed --memory 20000
    python benchmarks/bench_detection.py --data /nonexistent --speed
    nice -n 10 python benchmarks/bench_detection.py --data /nonexistent --dask --dask-size 20000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPLIT_ROW = 1600
RANGES = {"16-40": (16, 40), ">=16": (16, None)}


def load_mosaic(folder):
    """The 3200 x 1700 West mosaic and its de-duplicated catalogue."""
    import pandas as pd

    from skcrater.detection import read_catalogue, read_image

    folder = Path(folder)
    upper, lower = read_image(folder / "tile1_24.pgm"), read_image(folder / "tile1_25.pgm")
    if not np.array_equal(upper[1500:], lower[:200]):
        raise ValueError("tile1_25 does not continue tile1_24 with 200 shared rows.")
    image = np.concatenate([upper, lower[200:]])
    cat_upper = read_catalogue(folder / "1_24_gt.csv")
    cat_lower = read_catalogue(folder / "1_25_gt.csv").assign(y=lambda t: t["y"] + 1500)
    catalogue = pd.concat(
        [cat_upper[cat_upper["y"] < 1600], cat_lower[cat_lower["y"] >= 1600]],
        ignore_index=True,
    )
    return image, catalogue


def halves(image, catalogue, gap):
    """(name, train image, train catalogue, test image, test catalogue) for both folds."""
    rows = image.shape[0]
    parts = {"upper": (0, SPLIT_ROW), "lower": (SPLIT_ROW, rows)}
    for train, test in (("upper", "lower"), ("lower", "upper")):
        t0, t1 = parts[train]
        t0, t1 = (t0, t1 - gap) if train == "upper" else (t0 + gap, t1)
        s0, s1 = parts[test]
        yield (
            f"train {train}, test {test}",
            image[t0:t1],
            _crop(catalogue, t0, t1),
            image[s0:s1],
            _crop(catalogue, s0, s1),
        )


def _crop(catalogue, start, stop):
    inside = (catalogue["y"] >= start - 0.5) & (catalogue["y"] < stop - 0.5)
    return catalogue[inside].assign(y=lambda t: t["y"] - start).reset_index(drop=True)


def make_detector(args, seed):
    from skcrater import CraterCNNClassifier
    from skcrater.detection import CraterDetector

    cnn = CraterCNNClassifier.recommended(
        preprocessing=args.preprocessing,
        class_weight="balanced",
        epochs=args.epochs,
        random_state=seed,
        verbose=0,
    )
    if args.ensemble > 1:
        from skcrater.detection._detector import seed_vote

        # a soft vote of networks of consecutive seeds (that of seed * K is the single network)
        cnn = seed_vote(cnn, range(seed * args.ensemble, (seed + 1) * args.ensemble))
    low, high = args.diameter_range
    step = np.sqrt(high / low)
    n = int(np.ceil(np.log(args.max_diameter / high) / np.log(step))) + 1
    # --finer-levels K adds K upsampled levels: craters below the range are seen in it there
    scales = step ** -np.arange(-args.finer_levels, n) if args.finer_levels else None
    return CraterDetector(
        cnn,
        window=args.window,
        diameter_range=(low, high),
        scales=scales,
        max_diameter=args.max_diameter,
        hard_negative_rounds=args.rounds,
        positives_per_crater=args.positives,
        random_state=seed,
        verbose=1,
    )


def scores_at(found, catalogue, threshold, low, high, raw=None):
    from skcrater.detection import match_craters

    kept = found[found["score"] >= threshold]
    result = match_craters(kept, catalogue, min_diameter=low, max_diameter=high)
    errors = result.matches.loc[result.matches["scored"], "diameter_error"].abs()
    extra = {}
    if raw is not None:
        raw_result = match_craters(
            raw[raw["score"] >= threshold], catalogue, min_diameter=low, max_diameter=high
        )
        raw_errors = raw_result.matches.loc[raw_result.matches["scored"], "diameter_error"]
        extra["uncalibrated_f1"] = round(raw_result.f1, 4)
        extra["uncalibrated_median_diameter_error"] = round(float(raw_errors.abs().median()), 4)
    return {
        "threshold": float(threshold),
        "tp": result.tp,
        "fp": result.fp,
        "fn": result.fn,
        "precision": round(result.precision, 4),
        "recall": round(result.recall, 4),
        "f1": round(result.f1, 4),
        "average_precision": round(result.average_precision, 4),
        "median_diameter_error": round(float(errors.median()), 4) if len(errors) else None,
        **extra,
    }


def best_threshold(found, catalogue, low, high):
    """The score threshold with the best F1 on these detections."""
    from skcrater.detection import match_craters

    result = match_craters(found, catalogue, min_diameter=low, max_diameter=high)
    p, r = result.precision_curve, result.recall_curve
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0)
    return float(result.thresholds[int(np.argmax(f1))]) if f1.size else 0.5


def run_fold(args, seed, name, train_img, train_cat, test_img, test_cat):
    detector = make_detector(args, seed)
    start = time.perf_counter()
    detector.fit(train_img, train_cat)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    detector.predict(test_img)
    scan_s = time.perf_counter() - start
    # every peak, so that other thresholds can be applied below
    chosen = detector.threshold_
    detector.set_params(threshold=0.02)
    found = detector.predict(test_img)[0]
    calibration, detector.diameter_calibration_ = detector.diameter_calibration_, (0.0, 1.0)
    raw = detector.predict(test_img)[0]
    detector.diameter_calibration_ = calibration
    detector.set_params(threshold="auto")
    fold = {
        "fold": name,
        "seed": seed,
        "train_craters": len(train_cat),
        "test_craters": len(test_cat),
        "training_windows": detector.training_counts_,
        "fit_s": round(fit_s, 1),
        "predict_s": round(scan_s, 2),
        "predict_s_per_megapixel": round(scan_s / (test_img.size / 1e6), 3),
        "scales": [round(float(s), 4) for s in detector.scales_],
        "stride": int(detector.stride_),
        "threshold": round(chosen, 4),
        "diameter_calibration": [round(v, 4) for v in detector.diameter_calibration_],
        "validation": {k: round(v, 4) for k, v in detector.validation_.items()},
    }
    for label, (low, high) in RANGES.items():
        fold[label] = {
            "at_detector_threshold": scores_at(found, test_cat, chosen, low, high, raw),
            "at_0.5": scores_at(found, test_cat, 0.5, low, high, raw),
            "at_best_test_threshold": scores_at(
                found, test_cat, best_threshold(found, test_cat, low, high), low, high
            ),
        }
    print(json.dumps(fold), flush=True)
    return fold, detector


def speed(detector, image, side=600):
    """Dense scan against cut windows + predict_proba at the same stride, on a crop."""
    from skcrater.detection._dense import total_stride
    from skcrater.detection._detector import _dense_networks

    networks = [network for network, _ in _dense_networks(detector.estimator_)]
    crop = image[:side, :side]
    detector.score_map(crop)  # untimed: TensorFlow traces the dense graph on its first call
    start = time.perf_counter()
    dense = detector.score_map(crop)
    dense_s = time.perf_counter() - start
    window = detector.window
    windows = np.lib.stride_tricks.sliding_window_view(crop / np.float32(255), (window, window))
    windows = windows[:: detector.stride_, :: detector.stride_][: dense.shape[0], : dense.shape[1]]
    windows = windows.reshape(-1, window, window)
    detector.estimator_.predict_proba(windows[:512])  # untimed, likewise
    start = time.perf_counter()
    proba = detector.estimator_.predict_proba(windows)[:, 1]
    windows_s = time.perf_counter() - start
    # a vote runs each of its networks: both paths count them all
    flops = sum(_dense_flops(net, detector.stride_) for net in networks) * (
        crop.size / detector.stride_**2
    )
    window_flops = sum(_window_flops(net) for net in networks) * len(windows)
    return {
        "crop": f"{side}x{side}",
        "networks": len(networks),
        "stride": int(detector.stride_),
        "network_stride": int(total_stride(networks[0])),
        "dense_s_per_megapixel": round(dense_s / (crop.size / 1e6), 4),
        "windows_s_per_megapixel": round(windows_s / (crop.size / 1e6), 4),
        "speed_up": round(windows_s / dense_s, 1),
        "max_abs_difference": float(np.abs(proba.reshape(dense.shape) - dense).max()),
        "dense_gflops_per_s": round(flops / dense_s / 1e9, 1),
        "windows_gflops_per_s": round(window_flops / windows_s / 1e9, 1),
        # the speed-up a dense scan would reach at the windows' arithmetic rate
        "flops_ratio": round(window_flops / flops, 1),
    }


def _dense_flops(model, stride):
    """Multiply-adds x 2 per window position of ``model``'s dense scan (convolutions only)."""
    from skcrater.detection._dense import fully_convolutional

    dense = fully_convolutional(model)
    total, cell = 0.0, 1
    for layer in dense.layers:
        kind = type(layer).__name__
        if kind == "MaxPooling2D":
            cell *= layer.strides[0]
        if kind == "Conv2D":
            kh, kw, cin, cout = layer.kernel.shape
            # outputs per window position: (stride / cell)^2 of this layer's pixels
            total += 2 * kh * kw * cin * cout * (stride / cell) ** 2
    return total


def _window_flops(model):
    """Multiply-adds x 2 of the tile network on one cut window (convolutions and dense)."""
    total = 0.0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += 2 * kh * kw * cin * cout * h * w
        if kind == "Dense":
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return total


def memory(side, band_pixels):
    """Peak RSS of one predict on a synthetic side x side mosaic, in a fresh process."""
    code = f"""
import os, resource, time, json
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
from skcrater import CraterCNNClassifier
from skcrater.datasets import make_crater_scene
from skcrater.detection import CraterDetector
tile, catalogue = make_crater_scene(1000, n_craters=300, diameter_range=(8, 120), random_state=0)
cnn = CraterCNNClassifier.recommended(preprocessing="local", epochs=2, random_state=0)
det = CraterDetector(cnn, band_pixels={band_pixels}, random_state=0).fit(tile, catalogue)
mosaic = np.tile(tile, ({side} // 1000 + 1, {side} // 1000 + 1))[:{side}, :{side}]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
found = det.predict(mosaic)[0]
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"side": {side}, "band_pixels": {band_pixels}, "image_mib": mosaic.nbytes / 2**20,
    "peak_rss_mib_before_predict": before / 1024, "peak_rss_mib": peak / 1024,
    "predict_s": seconds, "megapixels_per_s": mosaic.size / 1e6 / seconds,
    "detections": len(found)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def dask_scaling(side, workers, chunk, tf_threads=None):
    """Megapixels per second and peak memory per worker of ``predict`` on a lazy mosaic.

    ``tf_threads`` limits TensorFlow's threads on each worker, as one core per
    worker of a cluster would; None leaves it to use every core.
    """
    import dask.array as da
    from distributed import Client, LocalCluster

    detector, tile = _speed_detector()
    tiles = -(-side // tile.shape[0])
    lazy_tile = da.from_array(tile, chunks=tile.shape)
    mosaic = da.block([[lazy_tile] * tiles] * tiles)[:side, :side].rechunk(chunk)
    runs = []
    for n_workers in workers:
        with (
            LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            if tf_threads is not None:
                client.run(_limit_tf_threads, tf_threads)
            # TensorFlow's start and the network's dense version, on every worker, not timed
            detector.predict(da.from_array(np.tile(tile, (1, n_workers)), chunks=tile.shape))
            start = time.perf_counter()
            found = detector.predict(mosaic)[0]
            seconds = time.perf_counter() - start
            peaks = client.run(_peak_rss_mib)
        runs.append(
            {
                "workers": n_workers,
                "predict_s": round(seconds, 1),
                "megapixels_per_s": round(side**2 / 1e6 / seconds, 3),
                "peak_rss_mib_per_worker": sorted(round(v) for v in peaks.values()),
                "detections": len(found),
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    first, last = runs[0]["megapixels_per_s"], runs[-1]["megapixels_per_s"]
    return {
        "side": side,
        "chunk": chunk,
        "dtype": "uint8",
        "cores": os.cpu_count(),
        "network": "CraterCNNClassifier.recommended(preprocessing='local'): its size, weights of"
        " 1 epoch on a 400 x 400 synthetic scene (speed only, not quality)",
        "scales": len(detector.scales_),
        "stride": int(detector.stride_),
        "tf_threads_per_worker": tf_threads or "all cores",
        "runs": runs,
        "scaling": round(last / first, 2),
    }


def _limit_tf_threads(n):
    """Run on a fresh worker before its first scan, while TensorFlow's threads can be set."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def _speed_detector(networks=1):
    """A detector of the recommended network's size (a vote of ``networks`` of them), briefly
    trained, and the mosaic's tile."""
    from skcrater import CraterCNNClassifier
    from skcrater.datasets import make_crater_scene
    from skcrater.detection import CraterDetector
    from skcrater.detection._detector import seed_vote

    scene, catalogue = make_crater_scene(
        400, n_craters=60, diameter_range=(16, 120), random_state=0
    )
    cnn = CraterCNNClassifier.recommended(preprocessing="local", epochs=1)
    cnn = seed_vote(cnn, range(networks))
    # a low threshold, so that the barely trained network still gives candidates to merge
    detector = CraterDetector(cnn, threshold=0.2, validation_fraction=0, random_state=0)
    tile = make_crater_scene(1000, n_craters=300, diameter_range=(8, 120), random_state=0)[0]
    return detector.fit(scene, catalogue), tile


def _peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/hrsc_scenes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=0, help="hard-negative rounds")
    parser.add_argument("--max-diameter", type=float, default=300)
    parser.add_argument("--preprocessing", default="local")
    parser.add_argument("--gap", type=int, default=48)
    parser.add_argument(
        "--ensemble", type=int, default=1, metavar="K", help="soft vote of K networks"
    )
    parser.add_argument("--window", type=int, default=48, help="window side in pixels")
    parser.add_argument(
        "--diameter-range",
        type=float,
        nargs=2,
        default=(16, 40),
        metavar=("LOW", "HIGH"),
        help="crater diameters of the window (pixels at its scale)",
    )
    parser.add_argument("--positives", type=int, default=4, help="positives per crater")
    parser.add_argument("--finer-levels", type=int, default=0, help="upsampled pyramid levels")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--memory", type=int, default=0, metavar="SIDE")
    parser.add_argument("--band-pixels", type=int, default=2**20, help="with --memory")
    parser.add_argument("--dask", action="store_true", help="predict on a lazy mosaic")
    parser.add_argument("--dask-size", type=int, default=20000, metavar="SIDE")
    parser.add_argument("--dask-workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dask-chunk", type=int, default=4096)
    parser.add_argument(
        "--dask-tf-threads", type=int, help="TensorFlow threads per worker (default: all cores)"
    )
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    results = {"args": vars(args), "folds": []}
    detector = None
    if Path(args.data).is_dir() and args.folds:
        image, catalogue = load_mosaic(args.data)
        results["mosaic"] = {"shape": list(image.shape), "craters": len(catalogue)}
        for seed in args.seeds:
            for k, fold in enumerate(halves(image, catalogue, args.gap)):
                if k in args.folds:
                    row, detector = run_fold(args, seed, *fold)
                    results["folds"].append(row)
        if args.speed and detector is not None:
            results["speed"] = speed(detector, image)
            print(json.dumps(results["speed"]), flush=True)
    if args.speed and detector is None:
        # speed depends on the network's shape, not on its weights: a briefly trained one will do
        detector, tile = _speed_detector(args.ensemble)
        results["speed"] = speed(detector, tile)
        print(json.dumps(results["speed"]), flush=True)
    if args.memory:
        results["memory"] = memory(args.memory, args.band_pixels)
        print(json.dumps(results["memory"]), flush=True)
    if args.dask:
        results["dask"] = dask_scaling(
            args.dask_size, args.dask_workers, args.dask_chunk, args.dask_tf_threads
        )
    results["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = json.dumps(results, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

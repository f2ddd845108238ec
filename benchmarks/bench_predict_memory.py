"""Memory and speed of CraterCNNClassifier.predict_proba on many tiles.

A small network is fitted once on 48x48 tiles and pickled; then, for each
number of tiles, a fresh subprocess loads it, makes that many random uint8
tiles (the input), predicts them once, and reports the peak resident memory
above what it held with the input loaded (the extra memory predict_proba
needs) and the tiles predicted per second. ``--legacy`` measures the former
all-at-once path (every tile scaled to float32 and padded, one
``model.predict`` call) in the same way, for comparison. Prints JSON.

    python benchmarks/bench_predict_memory.py [--sizes 50000 200000 1000000] [--legacy]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SIDE = 48
#: A network much smaller than the recipe's, so that the time goes to the data path.
SMALL_NETWORK = dict(conv_filters=(8,), pool_sizes=(3,), dense_units=(8,), dropout=0.0)


def _fit(path):
    from skcrater import CraterCNNClassifier
    from skcrater.datasets import make_craters

    X, y = make_craters(n_samples=400, image_size=SIDE, random_state=0)
    clf = CraterCNNClassifier(**SMALL_NETWORK, epochs=2, random_state=0).fit(X, y)
    path.write_bytes(pickle.dumps(clf))
    return clf


def _rss_mb(field="VmRSS"):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


class _PeakSampler(threading.Thread):
    """Samples the resident memory every few milliseconds: a peak that does not rely
    on resetting the kernel's high-water mark (``/proc/self/clear_refs``)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.done = _rss_mb(), threading.Event()

    def run(self):
        while not self.done.wait(0.005):
            self.peak = max(self.peak, _rss_mb())


def _reset_high_water_mark():
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _legacy_proba(clf, X):
    """predict_proba as it was before streaming (all tiles scaled at once)."""
    import numpy as np

    from skcrater._images import check_images

    images, _ = check_images(X, image_shape=clf.image_shape_)
    x = clf._scale(images, clf.input_scale_)
    size = max(256, clf.batch_size)
    padded = np.zeros((-(-len(x) // size) * size, *x.shape[1:]), dtype=x.dtype)
    padded[: len(x)] = x
    p1 = clf.model_.predict(padded, batch_size=size, verbose=0)
    return np.asarray(p1, dtype=np.float64).reshape(-1)[: len(x)]


def _worker(model_path, n, legacy):
    import numpy as np

    clf = pickle.loads(Path(model_path).read_bytes())
    X = np.random.default_rng(n).integers(0, 256, size=(n, SIDE * SIDE), dtype=np.uint8)
    predict = (lambda A: _legacy_proba(clf, A)) if legacy else (lambda A: clf.predict_proba(A))
    predict(X[:1000])  # Keras traces its functions on the first call
    baseline = _rss_mb()
    exact_peak = _reset_high_water_mark()
    sampler = _PeakSampler()
    sampler.start()
    start = time.perf_counter()
    predict(X)
    seconds = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    peak = max(sampler.peak, _rss_mb("VmHWM") if exact_peak else 0.0)
    return {
        "n_tiles": n,
        "path": "legacy (all at once)" if legacy else "streamed",
        "input_mb": round(X.nbytes / 2**20, 1),
        "rss_with_input_mb": round(baseline, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_above_input_mb": round(peak - baseline, 1),
        "seconds": round(seconds, 2),
        "tiles_per_s": round(n / seconds),
        "exact_peak": exact_peak,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 1_000_000])
    parser.add_argument("--legacy", action="store_true", help="also measure the former path")
    parser.add_argument(
        "--worker", nargs=3, metavar=("MODEL", "N", "LEGACY"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.worker:
        model, n, legacy = args.worker
        print(json.dumps(_worker(model, int(n), legacy == "1")))
        return 0

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "cnn.pkl"
        clf = _fit(model)
        for n in args.sizes:
            for legacy in [False, True] if args.legacy else [False]:
                print(f"{n} tiles, {'legacy' if legacy else 'streamed'}...", file=sys.stderr)
                command = [
                    sys.executable,
                    __file__,
                    "--worker",
                    str(model),
                    str(n),
                    str(int(legacy)),
                ]
                out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                results.append(json.loads(out.strip().splitlines()[-1]))
                print(json.dumps(results[-1]), file=sys.stderr)
    print(
        json.dumps(
            {
                "benchmark": "predict_memory",
                "tile": f"{SIDE}x{SIDE} uint8",
                "network": {**SMALL_NETWORK, "parameters": int(clf.model_.count_params())},
                "batch": max(256, clf.batch_size),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

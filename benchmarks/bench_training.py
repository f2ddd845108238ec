"""Training and inference throughput of CraterCNNClassifier against plain Keras.

Both sides train the same network (the recipe's) on the same tiles with the
same batch size and epochs, in one process, alternating which goes first, and each timing
includes building and compiling the network. The wrapper trains without a
validation split so that both do exactly the same work. Prints JSON.

    python benchmarks/bench_training.py [--n-samples 2000] [--epochs 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _plain_keras_fit(x, y, epochs, batch_size, seed):
    from skcrater._network import build_network, seeded

    # the same seeding and op determinism as CraterCNNClassifier(random_state=...)
    with seeded(seed):
        model = build_network(image_shape=x.shape[1:3])
        model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
    return model


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import numpy as np

    from skcrater import CraterCNNClassifier
    from skcrater._images import check_images, scale_images
    from skcrater.datasets import make_craters

    X, y = make_craters(args.n_samples, random_state=0)
    images, _ = check_images(X)
    x = scale_images(images)
    y01 = y.astype("float32")
    clf = CraterCNNClassifier(
        epochs=args.epochs, batch_size=args.batch_size, validation_fraction=0.0, random_state=0
    )
    # warm-up: TensorFlow traces its functions on the first fit of the process
    _plain_keras_fit(x[:64], y01[:64], 1, args.batch_size, 0)
    CraterCNNClassifier(epochs=1, validation_fraction=0.0).fit(X[:64], y[:64])

    wrapper_s, plain_s = [], []
    runs = [
        (wrapper_s, lambda: clf.fit(X, y)),
        (plain_s, lambda: _plain_keras_fit(x, y01, args.epochs, args.batch_size, 0)),
    ]
    for repeat in range(args.repeats):
        # alternate which side goes first, so that neither always follows the other
        for times, run in runs if repeat % 2 == 0 else runs[::-1]:
            times.append(_timed(run)[0])
    n_images = args.n_samples * args.epochs
    wrapper_ips = n_images / statistics.median(wrapper_s)
    plain_ips = n_images / statistics.median(plain_s)

    clf.predict_proba(X[:256])  # trace predict once
    predict_s = min(_timed(lambda: clf.predict_proba(X))[0] for _ in range(args.repeats))
    proba = clf.predict_proba(X)
    print(
        json.dumps(
            {
                "benchmark": "training_throughput",
                "n_samples": args.n_samples,
                "image_size": 48,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "repeats": args.repeats,
                "wrapper_fit_s": [round(s, 3) for s in wrapper_s],
                "plain_keras_fit_s": [round(s, 3) for s in plain_s],
                "wrapper_train_images_per_s": round(wrapper_ips, 1),
                "plain_keras_train_images_per_s": round(plain_ips, 1),
                "throughput_ratio": round(wrapper_ips / plain_ips, 3),
                "inference_images_per_s": round(args.n_samples / predict_s, 1),
                "proba_finite": bool(np.isfinite(proba).all()),
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

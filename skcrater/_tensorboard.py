"""Keras TensorBoard logs for ``skcrater train --tensorboard`` and
:class:`skcrater.tuning.OptunaSearch` (``tensorboard_dir``)."""

from __future__ import annotations

import importlib.util

__all__ = ["require_tensorboard", "tensorboard_callback"]


def require_tensorboard(option):
    """Raise before any training when the ``tensorboard`` package is missing.

    Keras creates the log folder without it and fails only at the first
    scalar it writes, after the first epoch.

    Parameters
    ----------
    option : str
        The argument that asked for logs, for the message.
    """
    if importlib.util.find_spec("tensorboard") is None:
        raise ImportError(
            f"{option} writes Keras TensorBoard logs, which need the tensorboard package: "
            "pip install tensorboard (or skcrater[tensorboard])."
        )


def tensorboard_callback(log_dir):
    """A :class:`keras.callbacks.TensorBoard` writing to ``log_dir``."""
    import keras

    return keras.callbacks.TensorBoard(log_dir=str(log_dir))

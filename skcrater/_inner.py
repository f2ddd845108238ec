"""The one way skcrater finds the estimator inside another one.

Tuning, self-training, reports and persistence all need the classifier that
does the work inside whatever the user passed: a :class:`~sklearn.pipeline.Pipeline`
ending in it, a meta-estimator around it (:class:`~skcrater.SelfTrainingWrapper`,
:class:`~sklearn.model_selection.FixedThresholdClassifier`,
:class:`~sklearn.frozen.FrozenEstimator`...), or a fitted search holding its
``best_estimator_``. :func:`walk` defines that path once; every lookup goes
through it, so that all of them agree on what "inside" means.
"""

from __future__ import annotations

__all__ = ["walk", "find", "find_param", "fit_with_callbacks"]

#: Fitted attributes through which a fitted meta-estimator holds the estimator it wraps.
_FITTED_INNER = ("best_estimator_", "estimator_")


def walk(estimator, *, fitted=False):
    """Yield ``(prefix, estimator)`` pairs from ``estimator`` inward.

    Each step goes into a Pipeline's final step, or into the estimator that a
    meta-estimator wraps: with ``fitted=True`` its fitted ``best_estimator_``
    or ``estimator_`` when it has one, else its ``estimator`` parameter (which
    :class:`~sklearn.frozen.FrozenEstimator` holds already fitted).

    Parameters
    ----------
    estimator : estimator object
        Where to start; it is yielded first, with prefix ``""``.
    fitted : bool, default=False
        Follow the fitted estimators (for attributes such as ``history_``)
        instead of the parameters (for ``set_params`` names).

    Yields
    ------
    prefix : str or None
        The ``set_params`` prefix of the yielded estimator (``""``,
        ``"estimator__"``, ``"estimator__cnn__"``...), or None once the walk
        has gone through a fitted attribute, which is not a parameter.
    estimator : estimator object
        The outer estimator, then each inner one.
    """
    prefix, seen = "", set()
    while estimator is not None and id(estimator) not in seen:
        seen.add(id(estimator))
        yield prefix, estimator
        estimator, name = _step_inside(estimator, fitted)
        prefix = None if prefix is None or name is None else f"{prefix}{name}__"


def find(estimator, condition, *, fitted=False):
    """The first estimator of :func:`walk` that meets ``condition``.

    Parameters
    ----------
    estimator : estimator object
        Where to start.
    condition : str or callable
        An attribute name (the estimator must have it) or a predicate
        ``condition(estimator) -> bool``.
    fitted : bool, default=False
        As in :func:`walk`.

    Returns
    -------
    prefix : str or None
        Its ``set_params`` prefix (see :func:`walk`); None when not found.
    found : estimator object or None
        The estimator, or None.
    """
    test = condition if callable(condition) else (lambda est: hasattr(est, condition))
    for prefix, inner in walk(estimator, fitted=fitted):
        if test(inner):
            return prefix, inner
    return None, None


def find_param(estimator, name, *, innermost=False):
    """The full ``set_params`` name of parameter ``name`` along :func:`walk`, or None.

    Parameters
    ----------
    estimator : estimator object
        Where to start.
    name : str
        A parameter name such as ``"epochs"``.
    innermost : bool, default=False
        Take the innermost estimator of the walk only (a meta-estimator's
        own ``threshold``, e.g. a self-training wrapper's pseudo-labelling
        threshold, is not the classifier's decision threshold), instead of
        the first estimator that has the parameter.
    """
    pairs = list(walk(estimator))
    if innermost:
        pairs = pairs[-1:]
    for prefix, inner in pairs:
        if hasattr(inner, "get_params") and name in inner.get_params(deep=False):
            return f"{prefix}{name}"
    return None


def takes_callbacks(estimator):
    """Whether ``estimator.fit`` takes Keras ``callbacks``."""
    from sklearn.utils.validation import has_fit_parameter

    return has_fit_parameter(estimator, "callbacks")


def fit_with_callbacks(estimator, X, y, callbacks, **fit_params):
    """Fit ``estimator``, handing Keras ``callbacks`` to the estimator inside that takes them.

    Pipelines and wrappers pass them on by metadata routing; with routing on,
    the validation mask a self-training wrapper passes must be requested too.

    Raises
    ------
    ValueError
        If ``callbacks`` are given and no estimator on the way takes them.
    """
    if not callbacks:
        return estimator.fit(X, y, **fit_params)
    if takes_callbacks(estimator):
        return estimator.fit(X, y, callbacks=callbacks, **fit_params)
    from sklearn import config_context
    from sklearn.utils.validation import has_fit_parameter

    _, keras_estimator = find(estimator, takes_callbacks)
    if keras_estimator is None:
        raise ValueError(f"No estimator inside {type(estimator).__name__} takes Keras callbacks.")
    with config_context(enable_metadata_routing=True):
        requests = {"callbacks": True}
        if has_fit_parameter(keras_estimator, "validation_candidates"):
            requests["validation_candidates"] = True
        keras_estimator.set_fit_request(**requests)
        return estimator.fit(X, y, callbacks=callbacks, **fit_params)


def _step_inside(estimator, fitted):
    """Return (inner estimator, its parameter name or None), or (None, None)."""
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps and hasattr(estimator, "named_steps"):
        name, last = steps[-1]
        return (None, None) if last is None or isinstance(last, str) else (last, name)
    if fitted:
        for attribute in _FITTED_INNER:
            inner = getattr(estimator, attribute, None)
            if inner is not None and hasattr(inner, "fit"):
                return inner, None
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    inner = params.get("estimator")
    if hasattr(inner, "fit"):
        return inner, "estimator"
    return None, None

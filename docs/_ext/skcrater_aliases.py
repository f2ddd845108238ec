"""Resolve ``skcrater.<module>.<Name>`` references to ``skcrater.<Name>``.

The estimators are documented once, under the short public name that
``skcrater`` re-exports; docstrings may still refer to them through the module
that defines them (``skcrater.model_selection.SemiSupervisedKFold``).
"""

import skcrater


def _alias(target):
    parts = target.split(".")
    if len(parts) < 3 or parts[0] != "skcrater":
        return None
    if skcrater._LAZY.get(parts[2]) != f"skcrater.{parts[1]}":
        return None
    return ".".join(["skcrater", *parts[2:]])


def _resolve(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = _alias(node.get("reftarget", ""))
    if target is None:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], target, node, contnode
    )


def setup(app):
    app.connect("missing-reference", _resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

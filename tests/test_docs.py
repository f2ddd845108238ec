"""The documentation covers the public API, and the docstrings' examples run."""

import ast
import doctest
import importlib
import inspect
import re
from pathlib import Path

import pytest

import skcrater

DOCS = Path(__file__).resolve().parents[1] / "docs"
API_PAGE = DOCS / "api.rst"

#: Modules whose ``__all__`` is public API: the package's submodules and the CLI.
PUBLIC_MODULES = sorted({f"skcrater.{name}" for name in skcrater._SUBMODULES} | {"skcrater.cli"})


def public_names():
    """Map each public name's canonical dotted name to the object.

    Names re-exported by ``skcrater`` (``skcrater._LAZY``) are canonical
    there; everything else in a public module's ``__all__`` is canonical in
    its module.
    """
    names = {f"skcrater.{name}": getattr(skcrater, name) for name in skcrater._LAZY}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        assert hasattr(module, "__all__"), f"{module_name} has no __all__"
        for name in module.__all__:
            obj = getattr(module, name)
            if skcrater._LAZY.get(name) == module_name:
                assert obj is getattr(skcrater, name)
                continue
            names[f"{module_name}.{name}"] = obj
    return names


def documented_names(text):
    """Dotted names listed in the autosummary tables of an API page."""
    names, module, in_table = [], None, False
    for line in text.splitlines():
        directive = re.match(r"\.\. (\S+)::\s*(\S*)", line.strip())
        if directive:
            if directive.group(1) == "currentmodule":
                module = directive.group(2)
            in_table = directive.group(1) == "autosummary"
            continue
        if not in_table:
            continue
        if line and not line[0].isspace():
            in_table = False
        elif line.strip() and not line.strip().startswith(":"):
            names.append(f"{module}.{line.strip()}")
    return names


def test_api_reference_lists_every_public_name():
    documented = documented_names(API_PAGE.read_text())
    assert len(documented) == len(set(documented)), "a name is listed twice"
    missing = sorted(set(public_names()) - set(documented))
    assert not missing, f"public names missing from {API_PAGE.name}: {missing}"


def test_api_reference_lists_only_public_names():
    extra = sorted(set(documented_names(API_PAGE.read_text())) - set(public_names()))
    assert not extra, f"{API_PAGE.name} lists names that are not public: {extra}"


def test_documented_names_parser():
    text = """
.. currentmodule:: pkg

.. autosummary::
   :toctree: generated/

   One
   two

Text after the table.

.. currentmodule:: pkg.sub

.. autosummary::

   three
"""
    assert documented_names(text) == ["pkg.One", "pkg.two", "pkg.sub.three"]


def _callables():
    return sorted(
        name
        for name, obj in public_names().items()
        if inspect.isclass(obj) or inspect.isfunction(obj)
    )


@pytest.mark.parametrize("name", _callables())
def test_public_docstring_has_examples(name):
    doc = inspect.getdoc(public_names()[name]) or ""
    section = re.search(r"^Examples\n-{8}\n(.*?)(?=^\S.*\n-{3,}\n|\Z)", doc, re.M | re.S)
    assert section and ">>>" in section.group(1), f"{name} has no runnable Examples section"


def _doctest_modules():
    """Modules defining public names (where their docstrings live)."""
    modules = {inspect.getmodule(obj).__name__ for obj in public_names().values()
               if inspect.isclass(obj) or inspect.isfunction(obj)}  # fmt: skip
    return sorted(modules)


@pytest.mark.parametrize("module_name", _doctest_modules())
def test_docstring_examples_run(module_name, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(optionflags=flags)
    report = []
    for test in finder.find(module, module_name):
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0, f"{module_name} has no doctest"
    assert result.failed == 0, "".join(report)


def test_examples_in_user_guide_name_real_parameters():
    """``Estimator(param=...)`` calls in the guide's code blocks use real parameters."""
    estimators = {name: obj for name, obj in public_names().items() if inspect.isclass(obj)}
    by_short_name = {name.rsplit(".", 1)[1]: obj for name, obj in estimators.items()}
    checked = 0
    for page in sorted((DOCS / "user_guide").glob("*.rst")) + [DOCS / "index.rst"]:
        # a block is the lines indented deeper than its directive (which may be nested)
        blocks = re.findall(
            r"(?m)^( *)\.\. code-block:: python\n\n((?:\1   .*\n|\n)+)", page.read_text()
        )
        for _, block in blocks:
            tree = ast.parse(inspect.cleandoc("\n" + block))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                owner = getattr(func, "value", None)
                if isinstance(owner, ast.Name) and owner.id in by_short_name:
                    name = owner.id  # CraterCNNClassifier.recommended(...) takes its parameters
                if name not in by_short_name:
                    continue
                allowed = set(inspect.signature(by_short_name[name]).parameters)
                for keyword in node.keywords:
                    assert keyword.arg in allowed, f"{page.name}: {name}({keyword.arg}=...)"
                    checked += 1
    assert checked > 10


def _cli_sections(text):
    """``{command: its text}`` of the CLI page's ``skcrater COMMAND`` entries."""
    parts = re.split(r"^``skcrater ([a-z-]+)``\n", text, flags=re.MULTILINE)
    sections = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        sections[name] = re.split(r"^\S", body, maxsplit=1, flags=re.MULTILINE)[0]
    return sections


def test_cli_page_documents_every_option_of_every_command():
    import argparse

    from skcrater.cli import build_parser

    text = (DOCS / "user_guide" / "cli.rst").read_text()
    sections = _cli_sections(text)
    # the introduction (--overwrite) and the model options are shared by several commands
    intro = text.split("``skcrater demo``", 1)[0]
    model_options = text.split("Model options\n", 1)[1].split("Data folders\n", 1)[0]
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, sub in commands.choices.items():
        if name not in sections:
            missing.append(f"skcrater {name} (no entry)")
            continue
        for action in sub._actions:
            for option in action.option_strings:
                if not option.startswith("--") or option == "--help":
                    continue
                here = intro + sections[name] + model_options
                if not re.search(rf"``{re.escape(option)}[ `=]", here):
                    missing.append(f"skcrater {name} {option}")
    assert not missing, f"options of --help missing from cli.rst: {missing}"

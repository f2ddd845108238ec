"""The gallery examples are well-formed sphinx-gallery scripts, and they run."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))


def _order():
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        import gallery_order

        return gallery_order.ORDER
    finally:
        sys.path.pop(0)


def test_there_are_examples():
    assert len(EXAMPLES) >= 7
    assert (ROOT / "examples" / "GALLERY_HEADER.rst").is_file()


def test_gallery_order_names_every_example():
    assert sorted(_order()) == sorted(path.name for path in EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_has_title_and_sections(path):
    source = path.read_text()
    docstring = ast.get_docstring(ast.parse(source), clean=False)
    assert docstring, f"{path.name} has no module docstring"
    lines = docstring.strip("\n").splitlines()
    # a title over- and underlined with "=" as long as the title
    assert lines[0] == lines[2] == "=" * len(lines[0]) and len(lines[1].strip()) <= len(lines[0])
    assert source.count("\n# %%\n") >= 2, f"{path.name} needs commented # %% sections"


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(path, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{path.name} failed:\n{done.stderr[-4000:]}"
    assert done.stdout.strip(), f"{path.name} printed nothing"

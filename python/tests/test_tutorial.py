"""examples/tutorial.ipynb runs from top to bottom (as a script of its code cells, with a
short budget), writing both figures."""
import json
import os

import pytest


def test_the_tutorial_notebook_runs(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    root = os.environ.get("TOM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    with open(os.path.join(root, "examples", "tutorial.ipynb")) as f:
        notebook = json.load(f)
    source = "\n\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")
    assert "STEPS = 4000" in source
    source = source.replace("STEPS = 4000", "STEPS = 1000")  # the same notebook on a test's budget
    namespace = {}
    exec(compile(source, "tutorial.ipynb", "exec"), namespace)
    out = namespace["OUT"]
    for figure in ("curves.png", "weights.png"):
        assert os.path.getsize(os.path.join(out, figure)) > 1000
    assert set(namespace["runs"]) == {"mle", "tom"}


@pytest.mark.parametrize("script, args", [("quickstart.py", ["--steps", "1000"]), ("own_env.py", ["--steps", "1000"])])
def test_the_example_scripts_run(script, args, tmp_path):
    import subprocess
    import sys
    # Absolute: the script runs in tmp_path, where a relative TOM_SOURCE_DIR would not resolve.
    root = os.path.abspath(os.environ.get("TOM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, os.path.join(root, "examples", "python", script), *args], env=env,
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr

"""A non-editable install works: the wheel is built, installed in a fresh virtual environment and the README's
Python API script runs there, on the shipped data that the wheel carries as package data (no repository beside
it).  The fresh environment borrows the test environment's third-party packages through PYTHONPATH (their
installation is not what is tested, and a .pth-based editable install there is not read from PYTHONPATH)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README_SCRIPT = '''
import stsched as st
inst = st.scenario("gpulet-m2", gpus=2)
a = st.solve(inst, "heuristic", objective="max-scale")
b = st.solve(inst, "milp", objective="max-scale")
for r in (a, b):
    assert st.check(inst, r.plan).valid
sim = st.simulate(inst, a.plan, arrivals="poisson", duration=30, seed=1)
print(a.objective, b.objective, sim.slo_attainment)
'''


def readme_script() -> str:
    """The API script as the README shows it (the test runs what users read)."""
    text = (ROOT / "README.md").read_text()
    start = text.index("```python\nimport stsched as st")
    return text[start + len("```python\n"):text.index("```", start + 10)]


def test_the_readme_shows_the_script_this_test_runs():
    assert readme_script().strip() == README_SCRIPT.strip()


@pytest.mark.slow
def test_wheel_installs_in_a_fresh_venv_and_runs_the_api_script(tmp_path):
    wheels, source = tmp_path / "wheels", tmp_path / "source"  # built from a copy: no build/ left in the checkout
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "results", "build", "*.egg-info", "__pycache__", ".hypothesis", "tests"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(source)], check=True, cwd=tmp_path, capture_output=True)
    (wheel,) = wheels.glob("stsched-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", site,
                    str(wheel)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k not in ("STSCHED_DATA", "PYTHONPATH")}
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]  # numpy, ortools, ... of the test environment
    probe = "import stsched, stsched.data.loaders as l; print(stsched.__file__); print(l.data_dir())"
    where = subprocess.run([str(py), "-c", probe], cwd=tmp_path, env=env, check=True, capture_output=True,
                           text=True).stdout.split("\n")
    assert where[0].startswith(str(env_dir)), where  # the wheel's package, not the repository's
    assert where[1].startswith(str(env_dir)), where  # its own copy of the data
    run = subprocess.run([str(py), "-c", README_SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    a, b, attainment = (float(x) for x in run.stdout.split())
    assert 0 < a <= b * (1 + 1e-6) and 0 <= attainment <= 1

"""`python -m experiments.X` keeps the CLI's promises: bad input is one line and exit 2, an interrupt one line and
exit 130, never a traceback (experiments.common.run_study)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from experiments.common import run_study
from stsched.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def test_bad_input_and_interrupt_map_to_exit_codes(capsys):
    def bad() -> int:
        raise InputError("inst.json: services[3].rate: -1 is not a rate")

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert run_study(bad) == 2
    assert capsys.readouterr().err == "stsched: error: inst.json: services[3].rate: -1 is not a rate\n"
    assert run_study(interrupted) == 130
    assert capsys.readouterr().err.strip().endswith("interrupted")
    assert run_study(lambda: 0) == 0


def test_missing_instance_is_one_line_not_a_traceback(tmp_path):
    run = subprocess.run([sys.executable, "-m", "experiments.exec_vs_sim", "--instance", str(tmp_path / "nope.json"),
                          "--plan", "p.json", "--profile", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "nope.json" in run.stderr


def test_sigint_during_a_study_is_one_line_and_130(tmp_path):
    script = ("import time\nfrom experiments.common import run_study\n"
              "def main():\n    print('started', flush=True)\n    time.sleep(60)\n    return 0\n"
              "raise SystemExit(run_study(main))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "started"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err and err.strip().endswith("interrupted")


def test_a_study_run_as_a_script_is_named_by_its_file(capsys):
    """Run as `python experiments/latency_eval.py` (no module spec) the study was named "__main__"."""
    namespace = {"__name__": "__main__", "__spec__": None}
    exec(compile("def main() -> int:\n    raise KeyboardInterrupt\n", "/x/experiments/latency_eval.py", "exec"),
         namespace)
    assert run_study(namespace["main"]) == 130
    assert capsys.readouterr().err.strip() == "latency_eval: interrupted"

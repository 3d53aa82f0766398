"""A study's bad flag is a usage error (exit 2, one line) before any point runs: each of these ran its grid with
every point failing and exit 0 (points recorded as failed or, in scale_eval, kept as result rows that a later run
reused), or was a traceback."""

from __future__ import annotations

import pytest

from experiments import (adapt_eval, adapt_frontier, adapt_scale, arrivals_default, interference_eval, scale_eval,
                         time_limits)

CASES = [
    (scale_eval, ["--services", "4", "--seeds", "1", "--time-limit", "0"], "--time-limit"),
    (scale_eval, ["--services", "4", "--seeds", "1", "--time-limit", "nan"], "--time-limit"),
    (scale_eval, ["--services", "4", "--seeds", "1", "--bound-time", "-1"], "--bound-time"),
    (scale_eval, ["--services", "4", "--seeds", "1", "--bound-rounds", "-1"], "--bound-rounds"),
    (scale_eval, ["--services", "4", "--seeds", "1", "--poisson", "2"], "--poisson"),
    (scale_eval, ["--services", "4", "--seeds", "1", "--solvers", "bogus"], "unknown solver 'bogus'"),
    (scale_eval, ["--services", "4", "--seeds", "1", "--solvers", "heuristic:bogus=1"], "bogus"),
    # options of the other mode were ignored, exit 0 (session 14's hostile tester): the integrality study's without
    # --integrality, the cluster-scale study's with it, what --quick overrides, the bound's with --no-bound
    (scale_eval, ["--services", "4", "--seeds", "1", "--bp-rule", "pairs"], "--bp-rule: an option of --integrality"),
    (scale_eval, ["--services", "4", "--seeds", "1", "--cuts", "3"], "--cuts: an option of --integrality"),
    (scale_eval, ["--services", "4", "--int-engine", "cbc", "--rf-strong", "4"],
     "--rf-strong, --int-engine: options of --integrality"),
    (scale_eval, ["--integrality", "--services", "4"], "--services: an option of the cluster-scale study"),
    (scale_eval, ["--integrality", "--no-bound", "--poisson", "0.05"], "--poisson, --no-bound: options of the"),
    (scale_eval, ["--quick", "--services", "64"], "--services: --quick sets it"),
    (scale_eval, ["--quick", "--bound-time", "5"], "--bound-time: --quick sets it"),
    (scale_eval, ["--services", "4", "--no-bound", "--bound-clock", "cpu"], "--bound-clock: an option of the bound"),
    (scale_eval, ["--services", "4", "--threads", "5000"], "--threads: expected a whole number <= 1024"),
    # --int-services took any count (10^8 services went on to the grid); now services_arg, as --services
    (scale_eval, ["--integrality", "--int-services", "100001"], "--int-services: expected a whole number <= 100000"),
    (arrivals_default, ["--services", "4", "--seeds", "1", "--time-limit", "1e12"], "--time-limit"),
    # adapt_scale checked nothing: every point failed alone, empty rows, exit 0 (--services a,b: a traceback);
    # time_limits --solvers nope was a KeyError traceback after the other solvers ran (session 14)
    (adapt_scale, ["--services", "100000000", "--hours", "0.1"], "--services: services: expected a whole number <="),
    (adapt_scale, ["--services", "a,b"], "--services: services: expected a whole number, got 'a'"),
    (adapt_scale, ["--services", "4", "--seed", "-1"], "--seed"),
    (adapt_scale, ["--services", "4", "--hours", "1e300"], "spans 8 h"),
    (adapt_scale, ["--services", "4", "--policies", "nope"], "unknown policy 'nope'"),
    # --quick set --services and --hours over what was given (and skipped their checks), exit 0
    (adapt_scale, ["--quick", "--services", "256"], "--services: --quick sets it"),
    (adapt_scale, ["--quick", "--services", "a,b", "--hours", "1e300"], "--services, --hours: --quick sets them"),
    (time_limits, ["--solvers", "heuristic", "nope"], "unknown solver 'nope'"),
    # adapt_eval: a bad --epochs, --mix or --variant failed every point alone, exit 0; --level -1 a ValueError
    (adapt_eval, ["--epochs", "30"], "epoch must be a whole number of minutes"),
    (adapt_eval, ["--mix", "nope"], "unknown gpulet mix 'nope'"),
    (adapt_eval, ["--level", "-1"], "rate: expected a number >= 0"),
    (adapt_eval, ["--variant", "nope=1"], "unknown option 'nope'; the options: adapt_nodes"),
    (adapt_eval, ["--hours", "0"], "argument --hours: hours 0.0"),
    # interference_eval: --random-seeds -1 failed after the first sections (exit 1), --late-share 5 after 10 s
    (interference_eval, ["--random-seeds", "-1"], "--random-seeds: expected a whole number >= 1"),
    (interference_eval, ["--late-share", "5"], "--late-share: expected a number < 1"),
    (adapt_frontier, ["--offsets", "0", "--policies", "static-peak", "--hours", "nan"], "--hours"),
    (adapt_frontier, ["--offsets", "0", "--policies", "static-peak", "--time-limit", "0"], "--time-limit"),
    (adapt_frontier, ["--offsets", "0", "--policies", "adaptive[adapt_nodes=0]"], "adapt_nodes"),
    # review mends: --time-limit 1e12 passed (every point then failed); a policy's own time_limit_s overrode the flag
    # while the row recorded the flag's value
    (adapt_frontier, ["--offsets", "0", "--policies", "static-peak", "--time-limit", "1e12"], "--time-limit"),
    (adapt_frontier, ["--offsets", "0", "--policies", "adaptive[time_limit_s=5]"],
     "time_limit_s is set by the study (--time-limit"),
    (adapt_frontier, ["--offsets", "0", "--policies", "static-peak", "--hours", "1e9"], "spans 8 h"),
    (adapt_frontier, ["--offsets", "a", "--policies", "static-peak"], "not a whole number"),
    (adapt_frontier, ["--offsets", "-1", "--policies", "static-peak"], "offsets 0..499"),
    (adapt_frontier, ["--offsets", "", "--policies", "static-peak"], "no window given"),
    (adapt_frontier, ["--offsets", "0", "--policies", "bogus"], "unknown policy 'bogus'"),
    (adapt_frontier, ["--offsets", "0", "--policies", "adaptive[bogus=1]"], "unknown option 'bogus'"),
]


@pytest.mark.parametrize("module, argv, words", CASES, ids=[f"{c[0].__name__.split('.')[-1]} {' '.join(c[1][-2:])}"
                                                           for c in CASES])
def test_a_bad_flag_stops_before_any_point(module, argv, words, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    # the study's first work: its grid, or (studies without one) time_limits' rows, interference_eval's calibration
    work = next(name for name in ("run_grid", "rows", "calibration_rows") if hasattr(module, name))
    monkeypatch.setattr(module, work, lambda *a, **k: pytest.fail("a grid ran"))
    with pytest.raises(SystemExit) as e:
        module.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())


def test_scale_eval_accepts_solvers_none_and_the_groups(monkeypatch, tmp_path):
    """'none' (the bounds only, README's command), 'exact' and 'baselines' are not solver names but are accepted."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.error = lambda message: pytest.fail(message)
    scale_eval._check_solvers(ap, ["none", "exact", "baselines", "heuristic:restarts=2", "cg"])

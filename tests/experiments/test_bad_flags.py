"""A study's bad flag is a usage error (exit 2, one line) before any point runs: each of these ran its grid with
every point failing and exit 0 (points recorded as failed or, in scale_eval, kept as result rows that a later run
reused), or was a traceback."""

from __future__ import annotations

import pytest

from experiments import adapt_frontier, arrivals_default, scale_eval

CASES = [
    (scale_eval, ["--services", "4", "--seeds", "1", "--time-limit", "0"], "--time-limit"),
    (scale_eval, ["--services", "4", "--seeds", "1", "--time-limit", "nan"], "--time-limit"),
    (scale_eval, ["--services", "4", "--seeds", "1", "--bound-time", "-1"], "--bound-time"),
    (scale_eval, ["--services", "4", "--seeds", "1", "--bound-rounds", "-1"], "--bound-rounds"),
    (scale_eval, ["--services", "4", "--seeds", "1", "--poisson", "2"], "--poisson"),
    (scale_eval, ["--services", "4", "--seeds", "1", "--solvers", "bogus"], "unknown solver 'bogus'"),
    (scale_eval, ["--services", "4", "--seeds", "1", "--solvers", "heuristic:bogus=1"], "bogus"),
    (arrivals_default, ["--services", "4", "--seeds", "1", "--time-limit", "1e12"], "--time-limit"),
    (adapt_frontier, ["--offsets", "0", "--policies", "static-peak", "--hours", "nan"], "--hours"),
    (adapt_frontier, ["--offsets", "0", "--policies", "static-peak", "--time-limit", "0"], "--time-limit"),
    (adapt_frontier, ["--offsets", "0", "--policies", "adaptive[adapt_nodes=0]"], "adapt_nodes"),
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
    monkeypatch.setattr(module, "run_grid", lambda *a, **k: pytest.fail("a grid ran"))
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

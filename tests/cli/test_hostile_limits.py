"""Session 16, limits and faults: time limits at medium scale, memory guards, outputs that fail.  Each test is one
finding; the docstring says what happened before the fix.  Tiny instances only (the medium-scale measurements
behind them are in docs/RESULTS.md, "Limits and faults (s16)")."""

from __future__ import annotations

from experiments.common import results_dir, run_grid


def test_a_resumed_study_runs_again_the_row_cut_short(tmp_path, monkeypatch):
    """A rows file whose last line was cut mid-row (copied or restored while being written) was resumed with the
    cut row taken as done: its point never ran again and its truncated cell ('lo' for 'long note') stayed."""
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    points = [{"n": n} for n in range(3)]
    run_grid("cut", points, ["n"], lambda p: {"value": p["n"] * 1.5, "note": "long note"})
    path = results_dir("cut") / "rows.csv"
    text = path.read_text()
    path.write_text(text[:text.rstrip("\n").rfind(",") + 3])  # the last row ends in 'lo'
    ran = []

    def again(p):
        ran.append(p["n"])
        return {"value": p["n"] * 1.5, "note": "long note"}

    rows = run_grid("cut", points, ["n"], again)
    assert ran == [2]
    assert [r["note"] for r in rows] == ["long note"] * 3 and path.read_text() == text

"""experiments.common.run_grid: rows are appended, resumed by their key columns, and a result may not change a key."""

from __future__ import annotations

import pytest

from experiments.common import run_grid


def test_run_grid_resumes_and_refuses_a_result_that_changes_its_key(tmp_path, monkeypatch):
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    calls = []

    def fn(p):
        calls.append(p["x"])
        return {"y": 2 * p["x"]}

    rows = run_grid("g", [{"x": 1}, {"x": 2}], ["x"], fn)
    assert [r["y"] for r in rows] == ["2", "4"] and calls == [1, 2]
    rows = run_grid("g", [{"x": 1}, {"x": 2}, {"x": 3}], ["x"], fn)
    assert calls == [1, 2, 3] and len(rows) == 3  # only the new point ran
    with pytest.raises(ValueError, match="key column"):
        run_grid("h", [{"x": 1}], ["x"], lambda p: {"x": 5})
    assert run_grid("k", [{"x": 1}], ["x"], lambda p: {"x": 1, "y": 0})[0]["y"] == "0"  # same value: allowed


def test_run_grid_keeps_rows_with_other_columns_aligned(tmp_path, monkeypatch):
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    outs = {1: {"error": "no plan"}, 2: {"y": 1, "error": ""}, 3: {"y": 2, "z": 3, "error": ""}}
    rows = run_grid("g", [{"x": x} for x in outs], ["x"], lambda p: outs[p["x"]])
    assert [(r["x"], r["y"], r["z"], r["error"]) for r in rows] == [("1", "", "", "no plan"), ("2", "1", "", ""),
                                                                    ("3", "2", "3", "")]
    assert len(run_grid("g", [{"x": x} for x in outs], ["x"], lambda p: 1 / 0)) == 3  # resumed: nothing reruns

"""Hostile input and faults, session 15: each test is one bug found by playing a hostile user of the command line,
the Python API and the studies; the docstring says what happened before the fix.  In-process through
`stsched.cli.main` on small hand-made files."""

from __future__ import annotations

import json
import shutil

import pytest

from stsched.data.loaders import data_dir
from tests.conftest import run_cli, small_inst_and_plan


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    return small_inst_and_plan(tmp_path_factory.mktemp("hostile15"))


_run = run_cli


def _profile_folder(tmp_path, solo_header_extra: str = "", rows: int = 12):
    """A small profile folder: the shipped a100-mps meta.json and its first `rows` solo rows."""
    src = data_dir() / "profiles" / "a100-mps"
    folder = tmp_path / "pf"
    folder.mkdir()
    shutil.copy(src / "meta.json", folder / "meta.json")
    lines = (src / "solo.csv").read_text().splitlines()[:rows + 1]
    return folder, lines


@pytest.mark.parametrize("table", ["solo.csv", "corun.csv"])
def test_a_profile_table_with_a_column_named_twice_is_one_line(tmp_path, capsys, table):
    """A solo.csv (or corun.csv) whose header names a column twice was an AttributeError traceback from pandas
    ('DataFrame' object has no attribute 'dtype'), exit 1, in `scenario profile DIR` and `fit`: a column named twice
    is a DataFrame, not a Series.  Now one line naming the file and the column, exit 2."""
    folder, solo = _profile_folder(tmp_path)
    src = data_dir() / "profiles" / "a100-mps"
    if table == "solo.csv":
        solo = [line + ("," + line.split(",")[6]) if i else line + ",latency_ms" for i, line in enumerate(solo)]
    else:
        corun = (src / "corun.csv").read_text().splitlines()[:5]
        first = corun[0].split(",")[0]
        corun = [line + "," + (first if i == 0 else line.split(",")[0]) for i, line in enumerate(corun)]
        (folder / "corun.csv").write_text("\n".join(corun) + "\n")
    (folder / "solo.csv").write_text("\n".join(solo) + "\n")
    code, text = _run(capsys, "scenario", "profile", str(folder), "--services", "2", "--seed", "1",
                      "--out", str(tmp_path / "i.json"))
    assert code == 2 and table in text and "named twice" in text, text
    assert not (tmp_path / "i.json").exists()

"""Profile tables with control characters in their names (session 12, hostile tester): a model name holding an
escape sequence or a bidirectional override was accepted from solo.csv / corun.csv, and `stsched scenario
profile DIR` wrote an instance with it that every other command then refused ('control characters are not allowed
in names').  Now the table is refused where it is read, naming the file, the column and the rows."""

from __future__ import annotations

import csv
import shutil

import pytest

from stsched.cli import main
from stsched.data import read_corun_csv, read_solo_csv
from stsched.data.loaders import data_dir
from stsched.errors import InputError

SHIPPED = data_dir() / "profiles" / "v100-mps"


def _rewrite(src, dst, column: str, bad: str) -> None:
    rows = list(csv.reader(src.open(encoding="utf-8")))
    i = rows[0].index(column)
    rows[1][i] = rows[1][i][:2] + bad + rows[1][i][2:]  # inside: surrounding white space is stripped
    with dst.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


@pytest.mark.parametrize("bad", ["\x1b[31m", "\u202e", "\u2028"])
def test_solo_and_corun_names_with_control_characters_are_refused(tmp_path, bad):
    _rewrite(SHIPPED / "solo.csv", tmp_path / "solo.csv", "model", bad)
    with pytest.raises(InputError, match=r"solo.csv: column 'model' holds control characters in data row 1"):
        read_solo_csv(tmp_path / "solo.csv")
    _rewrite(SHIPPED / "corun.csv", tmp_path / "corun.csv", "corunner", bad)
    with pytest.raises(InputError, match=r"column 'corunner' holds control characters in data row 1"):
        read_corun_csv(tmp_path / "corun.csv")


def test_scenario_profile_refuses_the_folder_instead_of_writing_an_unreadable_instance(tmp_path, capsys):
    folder = tmp_path / "prof"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns("raw"))
    rows = list(csv.reader((SHIPPED / "solo.csv").open(encoding="utf-8")))
    for r in rows[1:]:  # every row of one model, so that the scenario would draw it
        r[2] = r[2].replace("alexnet", "alex\x1b[31mnet")
    with (folder / "solo.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    out = tmp_path / "inst.json"
    code = main(["scenario", "profile", str(folder), "--services", "3", "--seed", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "holds control characters" in err and "Traceback" not in err, err
    assert not out.exists()


@pytest.mark.parametrize("content", [b"\xff\xfe\x00bad", b'{"a": 1}\n\xff\xfe\n'])
def test_import_igniter_refuses_a_binary_file_in_one_line(tmp_path, capsys, content):
    """`stsched import igniter FILE` on a file that is not UTF-8 was a UnicodeDecodeError traceback, exit 1."""
    (tmp_path / "bin.csv").write_bytes(content)
    code = main(["import", "igniter", str(tmp_path / "bin.csv"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot read" in err and "Traceback" not in err, err


@pytest.mark.parametrize("content, words", [(b"5", "expected a JSON object, got int"),
                                            (b"null", "expected a JSON object, got NoneType"),
                                            (b"\xff\xfe", "cannot read")])
def test_a_profile_folder_whose_meta_json_is_not_an_object_is_one_line(tmp_path, capsys, content, words):
    """`stsched scenario profile DIR` with meta.json `5`, `null` or binary was a TypeError / UnicodeDecodeError
    traceback, exit 1."""
    folder = tmp_path / "prof"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns("raw"))
    (folder / "meta.json").write_bytes(content)
    code = main(["scenario", "profile", str(folder), "--services", "1", "--out", str(tmp_path / "i.json")])
    err = capsys.readouterr().err
    assert code == 2 and words in err and "meta.json" in err and "Traceback" not in err, err

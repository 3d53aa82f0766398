"""Session 18's limit leaks (docs/RESULTS.md, "Limits and faults", session 18): the address-space floor's tests fail
on the code before its fix; the full-disk test passes on it too (the rows file was already written atomically: a
guard, and the measurement that item needed)."""

from __future__ import annotations

import errno
import resource

import pytest

from stsched import cli


def _address_space_cap(monkeypatch, cap: int) -> None:
    real = resource.getrlimit
    monkeypatch.setattr(resource, "getrlimit",
                        lambda which: (cap, cap) if which == resource.RLIMIT_AS else real(which))


def test_adapt_under_a_too_small_address_space_limit_is_refused_before_any_import(monkeypatch, capsys):
    """`prlimit --as=300000000 stsched adapt p64.json ...` never ended (scipy's OpenBLAS retrying its buffer for ever,
    in the parser's imports; at 280 MiB too, and a traceback up to 360 MiB); now one line, exit 1, before the parser
    imports a module."""

    def never(*args, **kwargs):
        raise AssertionError("the parser (its imports) was built before the refusal")

    monkeypatch.setattr(cli, "build_parser", never)
    floor = cli.ADDRESS_SPACE_FLOORS["adapt"] // 2 ** 20
    _address_space_cap(monkeypatch, 280 * 2 ** 20)
    code = cli.main(["adapt", "nosuch.json", "--trace", "azure-functions-2019"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0].startswith(f"stsched: out of memory: stsched adapt needs more than {floor} MiB")
    assert "allows 280 MiB" in err[0]


@pytest.mark.parametrize("cap_mib", [600, 2048])
def test_adapt_under_a_limit_above_its_floor_goes_on(cap_mib, monkeypatch):
    """The floor refuses only what cannot run: at 2 GiB, or unlimited, the command is parsed and runs (here its bad
    input is then named, exit 2); at 600 MiB too (review mend: the floor was 730 MiB, r2's VmSize with 2 OpenBLAS
    threads on one machine, and refused runs that fit: r2 ran at 500 and 600 MiB there, its VmPeak 555 MiB with one
    thread and one malloc arena; now it is set where the import hung or failed, 400 MiB)."""
    _address_space_cap(monkeypatch, cap_mib * 2 ** 20)
    assert cli.main(["adapt", "nosuch.json", "--trace", "azure-functions-2019"]) == 2


@pytest.mark.parametrize("command", ["check", "scenario"])
def test_commands_without_a_floor_are_not_refused(command, monkeypatch):
    _address_space_cap(monkeypatch, 100 * 2 ** 20)
    assert command not in cli.ADDRESS_SPACE_FLOORS
    assert cli.main([command, "--help"]) == 0


class _FullDisk:
    """Files whose `fails`-th write (counted over every file opened through it) and every later one write half
    their bytes, then raise ENOSPC: a disk that fills up in the middle of a row and stays full."""

    def __init__(self, real_fdopen, fails: int):
        self.real, self.fails, self.writes = real_fdopen, fails, 0

    def __call__(self, fd, *args, **kwargs):
        f = self.real(fd, *args, **kwargs)
        outer = self
        write = f.write

        def failing(data):
            outer.writes += 1
            if outer.writes >= outer.fails:  # (the disk stays full)
                write(data[:len(data) // 2])
                f.flush()
                raise OSError(errno.ENOSPC, "No space left on device")
            return write(data)

        f.write = failing
        return f


def test_a_study_on_a_full_disk_keeps_the_rows_written_and_resumes_the_lost_one(tmp_path, monkeypatch):
    """A study's rows file on a disk that fills up mid-row (issue: "a study on a full disk loses the point it was
    writing"): the driver rewrites the rows file through a temporary file replaced whole (`stsched.io.write_atomic`),
    so the rows written before stay, no temporary is left, and the resumed run computes the lost point and the
    points never run, no other.  Every row is flushed here (FLUSH_S 0: a study's points last seconds to minutes,
    each flushed as it arrives; rows finished within FLUSH_S of the last flush are written together)."""
    from experiments import common
    from stsched import io as stsched_io

    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    monkeypatch.setattr(common, "FLUSH_S", 0.0)
    monkeypatch.setattr(common, "_RUNNER", common.Runner())
    points = [{"x": i} for i in range(5)]
    ran: list[int] = []

    def fn(p):
        ran.append(p["x"])
        return {"y": p["x"] * 10}

    monkeypatch.setattr(stsched_io.os, "fdopen", _FullDisk(stsched_io.os.fdopen, fails=3))
    with pytest.raises(OSError) as e:
        common.run_grid("full", points, ["x"], fn)
    assert e.value.errno == errno.ENOSPC
    folder = tmp_path / "full"
    assert sorted(p.name for p in folder.iterdir() if p.name != common.LOCK) == ["rows.csv"]  # (no temporary)
    assert (folder / "rows.csv").read_text() == "x,y\n0,0\n1,10\n"  # the rows before the full disk, whole
    common.release_folders()
    monkeypatch.undo()  # the disk has room again
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    monkeypatch.setattr(common, "_RUNNER", common.Runner())
    ran.clear()
    rows = common.run_grid("full", points, ["x"], fn)
    common.release_folders()
    assert ran == [2, 3, 4]  # the lost point (2) and those never run, no other
    assert [(r["x"], r["y"]) for r in rows] == [(str(i), str(10 * i)) for i in range(5)]

"""One output path for every command that writes a file or a folder.

`output_file(path, inputs=...)` is called before any work: it refuses a folder, a path equal to an input (after
resolving links), a special file other than a character device or a FIFO, and a place that cannot be written (a
file is created and removed there to find out, since root passes every permission test).  The writing itself is
`stsched.io.write_atomic`, which

- follows a symbolic link and replaces the file it points to (the link stays a link; documented in the README),
- writes through a character device (/dev/null, a terminal) and a FIFO instead of replacing it,
- replaces a regular file atomically (a temporary file beside it, then `os.replace`), and
- gives a new file the permissions the umask allows (0666 & ~umask) and an overwritten file its old mode.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Iterable

from stsched.errors import InputError


def _probe_dir(folder: Path, what: str, shown: str) -> None:
    """Raise unless a file can be created in `folder` (or, when it does not exist yet, in its nearest ancestor)."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{what} {shown}: {probe} is not a folder")
    try:
        fd, name = tempfile.mkstemp(dir=probe, prefix=".stsched-probe-")
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise InputError(f"{what} {shown}: cannot write in {probe}: {e.strerror or e}") from None


def _same(a: str, b: str | os.PathLike) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b) or (os.path.exists(b) and os.path.samefile(a, b))
    except OSError:
        return False


def output_file(path: str | os.PathLike | None, *, inputs: Iterable[str | os.PathLike | None] = (),
                what: str = "--out", outputs: Iterable[str | os.PathLike | None] = ()) -> Path | None:
    """Check an output file before the work (None passes through); returns the path as given.  `outputs`: the
    command's other output files, which must differ from this one too (they need not exist yet)."""
    if path is None:
        return None
    shown = str(path)
    if not shown:
        raise InputError(f"{what}: empty path")
    real = os.path.realpath(shown)
    for given in inputs:
        if given is not None and os.path.exists(real) and _same(real, given):
            raise InputError(f"{what} {shown}: is also an input ({given}); choose another file")
    for given in outputs:  # a character device (/dev/null) may take several
        if given is not None and not is_stream(real) and _same(real, given):
            raise InputError(f"{what} {shown}: is also another output ({given}); choose another file")
    try:
        st = os.stat(real)
    except FileNotFoundError:
        _probe_dir(Path(real).parent, what, shown)
        return Path(shown)
    except OSError as e:
        raise InputError(f"{what} {shown}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} {shown}: is a folder; give a file name")
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        if not os.access(real, os.W_OK):
            raise InputError(f"{what} {shown}: not writable")
        return Path(shown)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what} {shown}: a special file that is not a character device or a FIFO")
    if not os.access(real, os.W_OK):
        raise InputError(f"{what} {shown}: not writable")
    _probe_dir(Path(real).parent, what, shown)
    return Path(shown)


def output_folder(path: str | os.PathLike | None, *, inputs: Iterable[str | os.PathLike | None] = (),
                  what: str = "--out") -> Path | None:
    """Check an output folder before the work: a folder (or a place where one can be created) that is writable
    and holds none of the inputs."""
    if path is None:
        return None
    shown = str(path)
    if not shown:
        raise InputError(f"{what}: empty path")
    real = Path(os.path.realpath(shown))
    if real.exists() and not real.is_dir():
        raise InputError(f"{what} {shown}: exists and is not a folder")
    for given in inputs:
        if given is not None and _same(str(real), given):
            raise InputError(f"{what} {shown}: is also an input ({given}); choose another folder")
    _probe_dir(real, what, shown)
    return Path(shown)


def is_stream(path: str | os.PathLike) -> bool:
    """A character device or a FIFO: written through, never replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)

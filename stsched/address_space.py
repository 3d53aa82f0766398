"""The address space this process may still map under its limit (`ulimit -v`, `prlimit --as`), and one refusal
when a command's measured floor does not fit in it (standard library only: it runs before the command imports
numpy, scipy or numba, whose import under a too-small limit failed late, or never ended: scipy's OpenBLAS retries
its 32 MB buffer for ever, session 18, docs/RESULTS.md "Limits and faults")."""

from __future__ import annotations

import resource

MIB = 2 ** 20


def limit_bytes() -> int | None:
    """The soft address-space limit of this process in bytes, None when unlimited."""
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    return None if soft == resource.RLIM_INFINITY else int(soft)


def used_bytes() -> int:
    """The address space this process has mapped now (VmSize; 0 when /proc cannot say)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, ValueError, IndexError, StopIteration):
        return 0


def left_bytes() -> int:
    """What the limit leaves to map (2^62 when unlimited)."""
    soft = limit_bytes()
    return 2 ** 62 if soft is None else max(0, soft - used_bytes())


def require(floor_bytes: int, what: str) -> None:
    """MemoryError (the CLI's one line "stsched: out of memory: ...", exit 1: a limit of the machine, not bad
    input) when the address-space limit is below `floor_bytes`, under which `what` was measured not to run (the
    import of its libraries failed or never ended: `stsched.cli.ADDRESS_SPACE_FLOORS`)."""
    soft = limit_bytes()
    if soft is not None and soft < floor_bytes:
        raise MemoryError(f"{what} needs more than {floor_bytes / MIB:.0f} MiB of address space (under it the import "
                          f"of its libraries failed or never ended, measured), the limit (ulimit -v, prlimit --as) "
                          f"allows {soft / MIB:.0f} MiB; raise the limit")

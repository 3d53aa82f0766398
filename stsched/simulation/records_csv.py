"""Per-request records to a CSV file in bounded memory, and the room a records file needs, checked before a run.

`stsched simulate --records F` wrote `records.to_frame().to_csv()` whole: a frame and the CSV text of every row
in memory at once (about 155 bytes a request on top of the simulation's own; a run of 79 M requests grew to 9 GB).
`write_records_csv` writes `CHUNK_ROWS` rows at a time into the atomically replaced file (same bytes as the
whole-frame CSV), so writing adds a bounded amount of memory.  `check_records_room` refuses, before any work, a
run whose records cannot fit: the streaming simulator holds them in memory (`STREAM_RECORD_BYTES` a request), and
every run needs the file's bytes on disk (at least `CSV_ROW_BYTES` plus the service name a row).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from stsched.errors import InputError
from stsched.io import atomic_writer
from stsched.outputs import is_stream
from stsched.simulation.arrivals import available_bytes
from stsched.simulation.summary import RequestRecords

#: rows formatted at a time (a frame and its CSV text of this many rows: about 40 MB)
CHUNK_ROWS = 1 << 17
#: the fewest bytes of a CSV row besides the service name: six separators, a newline, a GPU and a partition
#: digit and four times of 8 characters (measured: 78.5 on average, `python -m experiments.sim_memory --records`)
CSV_ROW_BYTES = 41
#: peak memory of the streaming simulator with records per request: 36 bytes of arrays, copied by the workers'
#: results and their concatenation; 97.6-146.2 measured on 0.6 M and 1.8 M requests on 1 and 2 shards
#: (`python -m experiments.sim_memory --records`, 2026-12-07), rounded up
STREAM_RECORD_BYTES = 160


def write_records_csv(path: str | os.PathLike, records: RequestRecords, chunk_rows: int = CHUNK_ROWS) -> None:
    """`records.to_frame().to_csv(index=False)` written to `path` `chunk_rows` rows at a time, atomically."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    with atomic_writer(path) as f:
        n = len(records)
        for a in range(0, max(n, 1), chunk_rows):
            piece = _rows(records, a, min(n, a + chunk_rows))
            f.write(piece.to_frame().to_csv(index=False, header=a == 0).encode())


def _rows(r: RequestRecords, a: int, b: int) -> RequestRecords:
    return RequestRecords(r.services, r.service[a:b], r.arrival[a:b], r.start[a:b], r.finish[a:b], r.gpu[a:b],
                          r.partition[a:b])


def check_records_room(path: str | os.PathLike, requests: float, name_bytes: float, *, in_memory: bool,
                       what: str = "--records") -> None:
    """Refuse (InputError naming `what`, the estimate and the limit) a records file for about `requests` requests
    whose rows cannot fit on the disk that holds `path`, or, `in_memory` (the streaming simulator keeps every
    record until the end), in the memory available now.  `name_bytes`: the mean service name's length, weighted
    by the requests.  A character device or a FIFO takes any number of bytes."""
    if in_memory:
        need, have = requests * STREAM_RECORD_BYTES, available_bytes()
        if need > have:
            raise InputError(f"{what} {path}: the streaming simulator would hold the records of about "
                             f"{requests:.3g} requests in memory, {_gib(need)} at {STREAM_RECORD_BYTES} bytes a "
                             f"request, more than the {_gib(have)} available; shorten --duration or drop --records")
    real = Path(os.path.realpath(path))
    if is_stream(real):
        return
    folder = real.parent
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    free = shutil.disk_usage(folder).free  # an old file stays until the new one replaces it: not counted free
    need = requests * (CSV_ROW_BYTES + name_bytes)
    if need > free:
        raise InputError(f"{what} {path}: the records of about {requests:.3g} requests need at least {_gib(need)} "
                         f"on disk ({CSV_ROW_BYTES + name_bytes:.0f} bytes a row or more), {_gib(free)} free in "
                         f"{folder}; shorten --duration or write them elsewhere")


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.2f} GiB"

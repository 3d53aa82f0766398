"""Per-request records written in chunks: the same bytes as the whole frame's CSV, in bounded memory (the whole
frame and its text were built at once: `simulate --records` on 79 M requests grew to 9 GB)."""

from __future__ import annotations

import tracemalloc

import numpy as np

from stsched.simulation.records_csv import write_records_csv
from stsched.simulation.summary import RequestRecords


def _records(n: int) -> RequestRecords:
    rng = np.random.default_rng(1)
    arrival = np.sort(rng.uniform(0, 100, n))
    start = arrival + rng.uniform(0, 0.01, n)
    finish = start + 0.002
    start[::7] = finish[::7] = np.nan  # never served: empty cells, latency inf
    gpu = np.where(np.isnan(start), -1, rng.integers(0, 4, n)).astype(np.int32)
    return RequestRecords(("a", "b,c"), rng.integers(0, 2, n).astype(np.int32), arrival, start, finish, gpu,
                          np.zeros(n, dtype=np.int32))


def test_chunks_write_the_whole_frames_bytes(tmp_path):
    r = _records(200)
    whole = r.to_frame().to_csv(index=False).encode()
    for chunk in (1, 7, 199, 200, 5000):
        write_records_csv(tmp_path / "r.csv", r, chunk_rows=chunk)
        assert (tmp_path / "r.csv").read_bytes() == whole, chunk
    write_records_csv(tmp_path / "e.csv", _records(0))
    assert (tmp_path / "e.csv").read_bytes() == _records(0).to_frame().to_csv(index=False).encode()


def test_writing_holds_one_chunk_not_the_file(tmp_path):
    r = _records(15_000)
    tracemalloc.start()
    try:
        write_records_csv(tmp_path / "r.csv", r, chunk_rows=300)
        chunked = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        (tmp_path / "w.csv").write_bytes(r.to_frame().to_csv(index=False).encode())
        whole = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = (tmp_path / "r.csv").stat().st_size
    assert whole > 2 * size and chunked < whole / 4, (chunked, whole, size)

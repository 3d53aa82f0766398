"""The one interface every partition mechanism implements, and the two ways a partition's worker runs.

A `PartitionBackend` turns a list of partition sizes (in its own units: CPU threads, MPS percent, SMs) into a
`PartitionSet`: one `Worker` per partition, all alive at once, disjoint where the mechanism allows it.  A worker
runs a `profiler.partitions.runner.Runner` and answers its commands; `submit` returns a handle whose `result()`
waits, so the caller can keep several partitions busy at the same time (co-runs, the executor).

* `ProcessWorker`: a child process (cpu: thread count and core affinity; mps: the MPS active-thread percentage,
  which CUDA reads once at context creation).  The parent never imports torch for these.
* `ThreadWorker`: a thread of this process (sm: green contexts are per process; gpu: streams of one context).
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import select
import struct
import subprocess
import sys
from abc import ABC, abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from stsched.errors import InputError

log = logging.getLogger(__name__)


class WorkerFailed(RuntimeError):
    """A partition's worker process failed on a command: `status` "error" (the command raised there: `detail` is
    the worker's traceback) or "died" (the process ended: `exit_code`).  Callers test the type, not the message
    (the sweep recognised a worker's failure by its text starting with 'worker (')."""

    def __init__(self, size: float, command: str, status: str, detail: str = "", exit_code: int | None = None):
        self.size, self.command, self.status, self.detail, self.exit_code = size, command, status, detail, exit_code
        if status == "died":
            text = f"worker (size {size:g}) died during {command!r} (exit code {exit_code})"
        else:
            text = f"worker (size {size:g}) failed in {command!r}:\n{detail}"
        super().__init__(text)

    @property
    def last_line(self) -> str:
        """The worker's last words: the final line of its traceback, or how it died."""
        lines = [x.strip() for x in self.detail.splitlines() if x.strip()]
        return lines[-1] if lines else str(self)


class BackendUnavailable(RuntimeError):
    """The mechanism cannot run here (no GPU, no MPS daemon, no green-context API); the message says why."""


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""


def slug(text: str) -> str:
    """A lower-case schema name: 'NVIDIA H100 80GB HBM3' -> 'h100-80gb-hbm3'."""
    s = re.sub(r"^nvidia\s+", "", text.strip().lower())
    s = re.sub(r"\(r\)|\(tm\)|processor|cpu @.*$", "", s)
    return re.sub(r"[^a-z0-9.]+", "-", s).strip("-") or "unknown"


# -- workers --------------------------------------------------------------------------------------------------
class Pending:
    """A command in flight on a process worker."""

    def __init__(self, worker: "ProcessWorker", command: str) -> None:
        self.worker = worker
        self.command = command

    def result(self, timeout: float | None = None) -> Any:
        return self.worker._receive(self.command, timeout)


class Worker(ABC):
    """One partition's worker.  `size` is the partition size in the backend's units (read back where possible)."""

    size: float
    info: dict[str, Any]

    @abstractmethod
    def submit(self, command: str, **kwargs: Any) -> Any:
        """Start a runner command; returns a handle with `result(timeout)`."""

    def call(self, command: str, timeout: float | None = None, **kwargs: Any) -> Any:
        return self.submit(command, **kwargs).result(timeout)

    @abstractmethod
    def close(self) -> None:
        ...


@dataclass(frozen=True)
class ProcessSetup:
    """How to start a worker process: environment set before torch is imported, CPU affinity, torch threads."""

    size: float
    device: str = "cpu"
    env: tuple[tuple[str, str], ...] = ()
    affinity: tuple[int, ...] = ()
    threads: int | None = None
    graphs: bool = False
    extra_info: tuple[tuple[str, Any], ...] = ()


def send_message(fobj: Any, obj: Any) -> None:
    """Length-prefixed pickle on a raw pipe."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    fobj.write(struct.pack("<Q", len(data)) + data)
    fobj.flush()


def recv_message(fobj: Any) -> Any:
    def exactly(n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = fobj.read(n - len(buf))
            if not chunk:
                raise EOFError("pipe closed")
            buf += chunk
        return bytes(buf)
    (n,) = struct.unpack("<Q", exactly(8))
    return pickle.loads(exactly(n))


class ProcessWorker(Worker):
    """A runner in a child process (`python -m profiler.partitions.worker`), one command in flight at a time.

    A plain subprocess rather than multiprocessing: the child never re-imports the caller's main module, so
    scripts need no `if __name__ == "__main__"` guard.  Messages are length-prefixed pickles on stdin/stdout.
    """

    def __init__(self, setup: ProcessSetup, start_timeout_s: float = 120.0) -> None:
        self.size = setup.size
        self.setup = setup
        env = {**os.environ, **dict(setup.env)}
        self._proc = subprocess.Popen([sys.executable, "-m", "profiler.partitions.worker"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, bufsize=0, env=env)
        send_message(self._proc.stdin, setup)
        self._busy = True
        self._start_timeout = start_timeout_s
        self.info: dict[str, Any] = {}

    def wait_ready(self) -> None:
        self.info = self._receive("start", self._start_timeout)

    def _receive(self, command: str, timeout: float | None) -> Any:
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"worker (size {self.size:g}) did not answer {command!r} within {timeout} s")
        try:
            status, value = recv_message(self._proc.stdout)
        except EOFError:
            raise WorkerFailed(self.size, command, "died", exit_code=self._proc.poll()) from None
        self._busy = False
        if status == "error":
            raise WorkerFailed(self.size, command, "error", str(value))
        return value

    def submit(self, command: str, **kwargs: Any) -> Pending:
        if self._busy:
            raise RuntimeError(f"worker (size {self.size:g}) already has a command in flight")
        send_message(self._proc.stdin, (command, kwargs))
        self._busy = True
        return Pending(self, command)

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                if not self._busy:
                    send_message(self._proc.stdin, ("close", {}))
            except (BrokenPipeError, OSError):
                pass
            try:
                self._proc.wait(10.0)
            except subprocess.TimeoutExpired:
                self._proc.terminate()
                try:
                    self._proc.wait(5.0)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(5.0)
        for f in (self._proc.stdin, self._proc.stdout):
            if f is not None:
                f.close()


class ThreadWorker(Worker):
    """A runner on a dedicated thread of this process; `make_runner` is called on that thread."""

    def __init__(self, size: float, make_runner: Callable[[], Any]) -> None:
        self.size = size
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"stsched-worker-{size:g}")
        self._runner: Any = None
        self._runner = self._pool.submit(make_runner).result()
        self.info = self._runner.info()

    def submit(self, command: str, **kwargs: Any) -> Future:
        return self._pool.submit(lambda: getattr(self._runner, command)(**kwargs))

    def close(self) -> None:
        if self._runner is not None:
            try:
                self._pool.submit(self._runner.release).result(60.0)
            finally:
                self._runner = None
        self._pool.shutdown(wait=True)


@dataclass
class PartitionSet:
    """The live partitions of one layout; close it (or use `with`) to stop the workers and free resources."""

    workers: list[Worker]
    info: dict[str, Any] = field(default_factory=dict)
    on_close: list[Callable[[], None]] = field(default_factory=list)

    @property
    def sizes(self) -> list[float]:
        return [w.size for w in self.workers]

    def close(self) -> None:
        for w in self.workers:
            try:
                w.close()
            except Exception as e:  # noqa: BLE001 - keep closing the others
                log.warning("closing a worker failed: %s", e)
        for fn in reversed(self.on_close):
            fn()
        self.on_close.clear()

    def __enter__(self) -> "PartitionSet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the backend interface ------------------------------------------------------------------------------------
class PartitionBackend(ABC):
    """A partition mechanism.  Sizes are in the backend's units: `capacity` units make the whole device."""

    name: str = ""
    mechanism: str = ""  # the profile schema's mechanism column
    units: str = ""

    @abstractmethod
    def availability(self) -> Availability:
        ...

    def require(self) -> None:
        a = self.availability()
        if not a.ok:
            raise BackendUnavailable(f"backend {self.name!r} unavailable: {a.reason}")

    @property
    @abstractmethod
    def capacity(self) -> float:
        ...

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Device and software facts for meta.json (device name as the schema spells it, versions, ...)."""

    def units_for(self, fraction: float) -> float:
        """The size in this backend's units closest to `fraction` of the device (a plan from another device)."""
        if not 0 < fraction <= 1 + 1e-9:
            raise InputError(f"partition fraction must lie in (0, 1], got {fraction}")
        return float(max(1, min(self.capacity, round(fraction * self.capacity))))

    def check_sizes(self, sizes: Sequence[float]) -> None:
        if not sizes:
            raise InputError(f"backend {self.name}: no partitions")
        if any(not s > 0 for s in sizes):
            raise InputError(f"backend {self.name}: sizes must be > 0, got {list(sizes)}")
        if sum(sizes) > self.capacity + 1e-9:
            raise InputError(f"backend {self.name}: sizes {list(sizes)} exceed the device's {self.capacity:g} "
                             f"{self.units}")

    @abstractmethod
    def open(self, sizes: Sequence[float]) -> PartitionSet:
        """Start one worker per size, all at once; the workers' `size` is the size actually obtained."""


def start_processes(setups: Sequence[ProcessSetup]) -> list[ProcessWorker]:
    """Spawn all workers, then wait until each is ready (they import torch in parallel)."""
    workers = [ProcessWorker(s) for s in setups]
    try:
        for w in workers:
            w.wait_ready()
    except BaseException:
        for w in workers:
            w.close()
        raise
    return workers

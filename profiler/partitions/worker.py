"""The child side of a `ProcessWorker`: `python -m profiler.partitions.worker`.

Reads a `ProcessSetup` from stdin, applies it (CPU affinity, torch threads; the environment was set by the parent
before this process started, so CUDA reads `CUDA_MPS_ACTIVE_THREAD_PERCENTAGE` at context creation), builds a
`Runner`, answers `("ok", info)`, then serves `(command, kwargs)` messages until `close` or end of input.
Anything printed to stdout is redirected to stderr: stdout carries only the protocol.
"""

from __future__ import annotations

import os
import sys
import traceback


def main() -> int:
    from profiler.partitions.base import recv_message, send_message

    inp = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        setup = recv_message(inp)
        if setup.affinity and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, setup.affinity)
        import torch

        if setup.threads is not None:
            torch.set_num_threads(setup.threads)
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:
                pass
        from profiler.partitions.runner import Runner

        runner = Runner(setup.device, graphs=setup.graphs, extra_info=dict(setup.extra_info))
        send_message(out, ("ok", runner.info()))
    except BaseException:  # noqa: BLE001 - reported to the parent
        send_message(out, ("error", traceback.format_exc()))
        return 1
    while True:
        try:
            command, kwargs = recv_message(inp)
        except EOFError:
            return 0
        if command == "close":
            return 0
        try:
            send_message(out, ("ok", getattr(runner, command)(**kwargs)))
        except BaseException:  # noqa: BLE001
            send_message(out, ("error", traceback.format_exc()))


if __name__ == "__main__":
    sys.exit(main())

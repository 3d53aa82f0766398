"""Issue 18, session 20: one window's decision trace at each of several commits, to find which merge moved it.

For each commit: a detached worktree of this repository (made once, under --tree; checked out per commit), then
`experiments.dev.rent19.trace_rent --offset N [--changes]` run there with this interpreter and PYTHONPATH set to the
worktree (the child prints which `stsched` it imported, so the code that ran is the commit's).  Each trace is written
to --out as `<offset>_<commit>.txt`; prints, per commit, the window's last line and the first line that differs from
the first commit's trace.

    python -m experiments.dev.bisect20.trace_at --offset 18 --commits a766c37 66310a0 6c1ae8f [--full]

Plan-only, the study's point options (those of trace_rent); work limits, so a trace is the same on any load.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[3]


def _tree(tree: Path, commit: str) -> None:
    if not tree.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit], check=True,
                       capture_output=True)
    subprocess.run(["git", "-C", str(tree), "checkout", "-q", commit], check=True)


def trace(tree: Path, commit: str, offset: int, full: bool, out: Path) -> list[str]:
    """The trace at `commit` (cached in `out`)."""
    path = out / f"{offset}_{commit}{'_full' if full else ''}.txt"
    if path.exists():
        return path.read_text().splitlines()
    _tree(tree, commit)
    probe = "import stsched, sys; print('stsched from', stsched.__file__, file=sys.stderr)"
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", probe], cwd=tree, env=env, check=True)
    cmd = [sys.executable, "-m", "experiments.dev.rent19.trace_rent", "--offset", str(offset)]
    done = subprocess.run(cmd + ([] if full else ["--changes"]), cwd=tree, env=env, check=True,
                          capture_output=True, text=True)
    path.write_text(done.stdout)
    return done.stdout.splitlines()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offset", type=int, required=True)
    ap.add_argument("--commits", nargs="+", required=True)
    ap.add_argument("--full", action="store_true", help="every decision, not only those that changed something")
    ap.add_argument("--tree", type=Path, default=Path("/tmp/bis20"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/bis20out"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    first: list[str] | None = None
    for commit in args.commits:
        lines = trace(args.tree, commit, args.offset, args.full, args.out)
        first = lines if first is None else first
        moved = next((f"{a!r} -> {b!r}" for a, b in zip(first, lines) if a != b), "same as the first")
        log.info("%s: %s; first difference: %s", commit, lines[-1] if lines else "(empty)", moved)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

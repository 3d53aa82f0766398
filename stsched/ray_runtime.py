"""Ray, the optional extra of the scale-out paths (docs/SCALE_OUT.md): the one place that imports it and joins a
running cluster or starts a local instance, for the studies' ray runner (`experiments.runners`) and the sharded
simulator (`stsched.simulation.stream`)."""

from __future__ import annotations

import logging
import os
import sys

from stsched.errors import InputError

INSTALL = "pip install -e '.[ray]'"


def import_ray():
    """The `ray` module, or InputError saying how to install the extra."""
    try:
        import ray
    except ImportError as e:
        raise InputError(f"--runner ray needs Ray, which does not import here ({e}): {INSTALL}") from None
    return ray


def init_ray(address: str | None, num_cpus: int | None = None, log_to_driver: bool = True):
    """Join the Ray cluster at `address` ("auto" or HOST:PORT), or start a local instance of `num_cpus` CPUs whose
    workers see this process's import path; a no-op when Ray is already initialised (a test's own instance).  No
    cluster at "auto", or a malformed address, is an InputError naming the address and Ray's reason (it was Ray's
    traceback, exit 1).  (An explicit HOST:PORT where nothing answers: Ray itself retries for minutes.)"""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}
    try:
        if address:
            ray.init(address=address, runtime_env=env, logging_level=logging.WARNING, log_to_driver=log_to_driver)
        else:
            ray.init(num_cpus=num_cpus, runtime_env=env, include_dashboard=False, logging_level=logging.WARNING,
                     log_to_driver=log_to_driver)
    except (ConnectionError, ValueError) as e:
        where = f"--address {address}" if address else "a local Ray instance"
        raise InputError(f"{where}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return ray

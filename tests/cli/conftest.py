"""Fixtures shared by the command-line tests."""

from __future__ import annotations

import pytest

from tests.conftest import small_inst_and_plan


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """A small instance and its plan (`tests.conftest.small_inst_and_plan`), made once per test module; a module
    that needs other files defines its own `files`."""
    return small_inst_and_plan(tmp_path_factory.mktemp("cli"))

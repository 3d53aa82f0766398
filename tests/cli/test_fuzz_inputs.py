"""Hypothesis-generated instance and plan JSON through `check`, `solve --solver heuristic` and `simulate`: zero
tracebacks (every outcome is an exit code 0, 1 or 2 with its line) and zero silent acceptances (a mutation that
breaks the schema is refused with exit 2, naming where)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stsched.cli import main
from stsched.io import instance_to_dict, plan_to_dict
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from tests.conftest import make_mps_instance

# 25 fixed examples per test in CI; STSCHED_FUZZ_EXAMPLES=N runs N random ones (a longer hunt)
_HUNT = int(os.environ.get("STSCHED_FUZZ_EXAMPLES", "0"))
SETTINGS = dict(max_examples=_HUNT or 25, deadline=None, derandomize=not _HUNT,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

BASE_INSTANCE = instance_to_dict(make_mps_instance())
BASE_PLAN = plan_to_dict(Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),)),)))

JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
                      st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                                  max_size=2))


def _paths(obj, prefix=()):
    """Every (path, value) of a JSON tree, objects and lists included."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    obj = json.loads(json.dumps(obj))
    if not path:
        return value
    node = obj
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return obj


def _run(argv, capsys) -> tuple[int, str]:
    code = main(argv)  # an exception escaping here is a traceback: the test fails
    out = capsys.readouterr()
    text = out.out + out.err
    assert code in (0, 1, 2), text
    assert "Traceback" not in text
    if code == 2:
        assert text.strip().startswith("stsched") and len(text.strip().splitlines()) == 1, text
    return code, text


def _write(tmp: Path, name: str, obj) -> str:
    p = tmp / name
    p.write_text(json.dumps(obj, allow_nan=True))
    return str(p)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _objects(base) -> list[tuple]:
    return [p for p, v in _paths(base) if isinstance(v, dict)]


def _leaves(base) -> list[tuple]:
    return [p for p, v in _paths(base) if p and not isinstance(v, (dict, list))]


@settings(**SETTINGS)
@given(data=st.data())
def test_any_leaf_of_an_instance(tmp, capsys, data):
    """Any value anywhere in the instance: check, solve and simulate answer with an exit code, never a traceback."""
    path = data.draw(st.sampled_from(_leaves(BASE_INSTANCE)), "path")
    inst = _set(BASE_INSTANCE, path, data.draw(JSON_LEAF, "value"))
    i, p = _write(tmp, "i.json", inst), _write(tmp, "p.json", BASE_PLAN)
    _run(["check", i, p], capsys)
    _run(["solve", i, "--solver", "heuristic", "--time-limit", "5"], capsys)
    _run(["simulate", i, p, "--duration", "1"], capsys)


@settings(**SETTINGS)
@given(data=st.data())
def test_any_leaf_of_a_plan(tmp, capsys, data):
    path = data.draw(st.sampled_from(_leaves(BASE_PLAN)), "path")
    plan = _set(BASE_PLAN, path, data.draw(JSON_LEAF, "value"))
    i, p = _write(tmp, "i.json", BASE_INSTANCE), _write(tmp, "p.json", plan)
    check, _ = _run(["check", i, p], capsys)
    sim, text = _run(["simulate", i, p, "--duration", "1"], capsys)
    # simulate accepts exactly the plans that check accepts (an invalid one: the checker's exit code 1)
    assert sim == check or (check == 1 and sim == 1 and "not valid" in text), (check, sim, text)


@settings(**SETTINGS)
@given(data=st.data(), key=st.text(min_size=1, max_size=8))
def test_an_unknown_key_is_refused(tmp, capsys, data, key):
    """A key the schema does not know, in any object of an instance or a plan: exit 2 naming it."""
    which = data.draw(st.sampled_from(["instance", "plan"]), "which")
    base = BASE_INSTANCE if which == "instance" else BASE_PLAN
    path = data.draw(st.sampled_from(_objects(base)), "object")
    node = base
    for k in path:
        node = node[k]
    if key in node or (not path and key == "extensions"):
        return
    obj = _set(base, path + (key,), 1)
    i = _write(tmp, "i.json", obj if which == "instance" else BASE_INSTANCE)
    p = _write(tmp, "p.json", obj if which == "plan" else BASE_PLAN)
    code, text = _run(["check", i, p], capsys)
    assert code == 2 and "unknown key" in text, text


@settings(**SETTINGS)
@given(data=st.data(), bad=st.sampled_from(["", "a\nb", "x\x00", "\x1b[2J", "tab\there", "\u202eevil"]))
def test_names_with_control_characters_are_refused(tmp, capsys, data, bad):
    field = data.draw(st.sampled_from([("services", 0, "name"), ("services", 1, "model"), ("name",),
                                       ("device", "name"), ("tables", 0, "model")]), "field")
    i = _write(tmp, "i.json", _set(BASE_INSTANCE, field, bad))
    code, text = _run(["check", i, _write(tmp, "p.json", BASE_PLAN)], capsys)
    assert code == 2, text


@settings(**SETTINGS)
@given(data=st.data())
def test_a_missing_required_key_is_refused(tmp, capsys, data):
    required = [("services",), ("device",), ("mechanism",), ("gpus",), ("batches",), ("tables",),
                ("services", 0, "rate"), ("services", 0, "slo_ms"), ("services", 1, "name"), ("device", "sms"),
                ("mechanism", "kind"), ("mechanism", "sizes"), ("tables", 0, "rows")]
    path = data.draw(st.sampled_from(required), "path")
    inst = json.loads(json.dumps(BASE_INSTANCE))
    node = inst
    for k in path[:-1]:
        node = node[k]
    del node[path[-1]]
    code, text = _run(["check", _write(tmp, "i.json", inst), _write(tmp, "p.json", BASE_PLAN)], capsys)
    assert code == 2 and "missing" in text, text

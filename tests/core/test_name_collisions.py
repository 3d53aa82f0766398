"""Names that print alike are one name (session 13, hostile tester): an instance with services 's0' and 's0 ', 'S0'
and 's0', 'café' composed and decomposed, or 's0' and full-width 'ｓ０' was accepted, solved and checked as two
services whose rows in every table and picture read the same."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import replace

import pytest

from stsched.errors import InputError, name_key
from stsched.io import instance_to_dict, load_instance
from tests.conftest import make_mps_instance

PAIRS = [("s0", "s0 "), ("S0", "s0"), (" s0", "s0"), ("s0", "\uff53\uff10"),
         (unicodedata.normalize("NFC", "caf\u00e9"), unicodedata.normalize("NFD", "caf\u00e9"))]


@pytest.mark.parametrize("a, b", PAIRS, ids=["trailing space", "case", "leading space", "full width", "NFC/NFD"])
def test_service_names_that_print_alike_are_refused(a, b, tmp_path):
    inst = make_mps_instance()
    services = (replace(inst.services[0], name=a), replace(inst.services[1], name=b))
    with pytest.raises(InputError, match="differ only in case, Unicode form or surrounding spaces"):
        replace(inst, services=services)
    d = instance_to_dict(inst)
    d["services"][0]["name"], d["services"][1]["name"] = a, b
    (tmp_path / "i.json").write_text(json.dumps(d, ensure_ascii=False))
    with pytest.raises(InputError, match=r"i\.json: .*services .* differ only"):
        load_instance(tmp_path / "i.json")


def test_model_names_that_print_alike_are_refused():
    inst = make_mps_instance()
    t0, t1 = inst.tables
    s0, s1 = inst.services
    with pytest.raises(InputError, match="models 'M0' and 'm0 ' differ only"):
        replace(inst, services=(replace(s0, model="M0"), replace(s1, model="m0 ")),
                tables=(replace(t0, model="M0"), replace(t1, model="m0 ")))


def test_distinct_names_stay_distinct():
    assert name_key("resnet50-1") != name_key("resnet50-2")
    assert make_mps_instance().service_names == ("s0", "s1")

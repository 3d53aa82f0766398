"""The Python API gives what the CLI gives, with the same defaults."""

from __future__ import annotations

import json

import pytest

import stsched as st
from stsched.cli import main
from stsched.errors import InputError
from tests.packaging.test_wheel import README_SCRIPT


def test_the_readme_script_runs_in_process(capsys):
    exec(compile(README_SCRIPT, "README", "exec"), {})
    a, b, attainment = (float(x) for x in capsys.readouterr().out.split())
    assert 0 < a <= b * (1 + 1e-6) and 0 <= attainment <= 1


def test_api_and_cli_agree_on_the_default_plan_of_a_poisson_instance(tmp_path, capsys):
    inst = st.scenario("random", services=6, gpus=6, seed=2)  # Poisson arrivals by default, as the CLI
    assert main(["scenario", "random", "--services", "6", "--gpus", "6", "--seed", "2", "--out",
                 str(tmp_path / "i.json")]) == 0
    assert st.load_instance(tmp_path / "i.json") == inst
    capsys.readouterr()
    main(["solve", str(tmp_path / "i.json"), "--json"])
    cli = json.loads(capsys.readouterr().out)
    api = st.solve(inst)
    assert api.to_dict()["gpus"] == cli["gpus"] and api.valid == cli["valid"]
    assert api.message == cli["message"]  # the same attainment loop ran (its message names its rounds)


def test_headroom_and_unknown_names_are_one_line_errors():
    inst = st.scenario("gpulet-m2", gpus=2)
    planned = st.solve(inst, headroom=1.25)
    assert planned.valid and "planned for 1.25 x every rate" in planned.message
    with pytest.raises(InputError, match="headroom"):
        st.solve(inst, headroom=0.5)
    with pytest.raises(InputError, match="unknown scenario"):
        st.scenario("gpulet-m9")
    with pytest.raises(InputError, match="unknown objective"):
        st.solve(inst, objective="fastest")
    with pytest.raises(InputError, match="unknown adapt option"):
        st.adapt(inst, trace="azure-functions-2019", polcy="adaptive")


def test_bound_is_never_above_what_the_solver_finds():
    inst = st.scenario("gpulet-m2", gpus=2)
    assert st.bound(inst, "max-scale").value >= st.solve(inst, objective="max-scale").objective * (1 - 1e-9)


def test_arguments_of_the_wrong_type_are_one_clear_error():
    """A plan where an instance belongs, a path, None, a string of params: AttributeError / TypeError / ValueError
    from deep inside (session 10, hostile tester); `current` with min-gpus was ignored as the CLI's --current was."""
    import pytest

    import stsched as st
    from stsched.errors import InputError
    from stsched.plan import GpuLayout, Partition, Plan, Tenant
    from tests.conftest import make_mps_instance

    inst = make_mps_instance()
    plan = Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),)),))
    for call, words in ((lambda: st.solve(plan), "instance: expected an Instance, got Plan"),
                        (lambda: st.solve("inst.json"), "st.load_instance"),
                        (lambda: st.check(plan, inst), "instance: expected an Instance, got Plan"),
                        (lambda: st.check(inst, None), "plan: expected a Plan, got NoneType"),
                        (lambda: st.reconfiguration(inst, plan), "old: expected a Plan, got Instance"),
                        (lambda: st.simulate(inst, {"gpus": []}), "plan: expected a Plan, got dict"),
                        (lambda: st.bound(inst, "zz"), "unknown objective 'zz'"),
                        (lambda: st.solve(inst, params="formulation=slots"), "params: expected None or a Mapping"),
                        (lambda: st.solve(inst, current=plan), "objective 'adapt' only")):
        with pytest.raises(InputError, match=words.replace("(", r"\(")):
            call()


@pytest.mark.parametrize("args, kwargs, words", [
    (("gpulet-m2",), {"gpus": 2.5}, "gpus"),          # was a TypeError from inside the builder
    (("gpulet-m2",), {"rate": "x"}, "rate"),
    (("random",), {"services": 3, "gpus": 2}, "seed"),  # a missing argument
    (("random",), {"services": 3, "gpus": 2, "seed": 1, "bogus": 1}, "bogus"),
])
def test_scenario_arguments_are_checked(args, kwargs, words):
    with pytest.raises(InputError, match=words):
        st.scenario(*args, **kwargs)

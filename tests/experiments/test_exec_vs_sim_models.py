"""exec_vs_sim's simulator models come from one table (SIM_MODELS): the rows and the pass rule built the two
calibrated models by name in two places, so a model renamed or changed in one was not in the other."""

from __future__ import annotations

from types import SimpleNamespace

from experiments.exec_vs_sim import RULE_MODELS, SIM_MODELS, model_inputs


class _Ratio:
    def __init__(self, who):
        self.who = who

    def batch_factors(self, idle, per_tenant):
        return (self.who, "ratio", idle, per_tenant)


def _host(who):
    return SimpleNamespace(overhead=f"{who} overhead", exec_ratio=_Ratio(who),
                           trace=SimpleNamespace(batch_factors=lambda: (who, "replay")))


def test_each_model_takes_its_runs_overhead_and_factors():
    calib, own = _host("calib"), _host("own")
    assert model_inputs("calib/tenant+host", calib, own) == ("calib overhead", ("calib", "ratio", False, True))
    assert model_inputs("calib/replay+host", calib, own) == ("calib overhead", ("calib", "replay"))
    assert model_inputs("own/tenant/idle+host", calib, own) == ("own overhead", ("own", "ratio", True, True))
    assert list(SIM_MODELS)[:4] == ["calib+host", "calib/tenant+host", "calib/tenant/idle+host", "calib/replay+host"]


def test_the_rule_judges_calibrated_models_of_the_table():
    assert all(m in SIM_MODELS and SIM_MODELS[m][0] == "calib" for m in RULE_MODELS)

"""Dev: the saved runs of an exec_vs_sim output folder (batches.csv.gz, requests.csv.gz, rows.csv) read back as the
runs the rule and the models take (session 16's /tmp/w15/rule_csv_lib.py; the instance and plan: models.setup)."""
from types import SimpleNamespace
import numpy as np, pandas as pd
from stsched.simulation.summary import RequestRecords
from experiments.dev.exec_vs_sim import models as M

def _run(seed, rep):
    names = M.inst.service_names
    b = B[(B.seed == seed) & (B.rep == rep)].drop(columns=['seed', 'rep']).reset_index(drop=True)
    r = R[(R.seed == seed) & (R.rep == rep)]
    rec = RequestRecords(names, np.array([names.index(s) for s in r.service], dtype=np.int32), r.arrival_s.to_numpy(),
                         r.start_s.to_numpy(), r.finish_s.to_numpy(), r.gpu.to_numpy(np.int32), r.partition.to_numpy(np.int32))
    arrivals = {n: np.sort(r.arrival_s[r.service == n].to_numpy()) for n in names}
    row = rows[(rows.seed == seed) & (rows.side == 'executor') & (rows.rep == rep)]
    summ = SimpleNamespace(slo_attainment=float(row.slo_attainment.iloc[0]), p99_ms=float(row.p99_ms.iloc[0])) if len(row) else None
    return SimpleNamespace(batches=b, records=rec, arrivals=arrivals, summary=summ)
_cache = {}
def _frames(d):
    if d not in _cache:
        _cache[d] = (pd.read_csv(f'{d}/batches.csv.gz'), pd.read_csv(f'{d}/requests.csv.gz'), pd.read_csv(f'{d}/rows.csv'))
    return _cache[d]
def seeds(d):
    B = _frames(d)[0]; return sorted(set(B.seed[B.rep >= 0]))
def reps(d, seed):
    B = _frames(d)[0]; return sorted(set(B.rep[(B.seed == seed) & (B.rep >= 0)]))
def run(d, seed, rep):
    global B, R, rows
    B, R, rows = _frames(d)
    return _run(seed, rep)

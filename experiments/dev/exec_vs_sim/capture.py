"""Dev only: run the executor on the given inputs for given tags (seed = the tag's number, e.g. 2f_a -> 2), pickle
each result (batches, records, arrivals) as run_TAG.pkl in --pickles (session 16's /tmp/w15/capture.py):
chrt -f 20 python -m experiments.dev.exec_vs_sim.capture --instance I --plan P --pickles DIR TAG..."""
import os, pickle, time
from experiments.dev.exec_vs_sim import models as M

def main():
    from profiler.partitions import get_backend
    from stsched.executor import ExecOptions, execute
    tags = M.setup()
    backend = get_backend("cpu", pin=True)
    for tag in tags:
        seed = int(tag.split('_')[0].rstrip('qf'))
        l0 = os.getloadavg()[0]; c0 = time.process_time()
        res = execute(M.inst, M.plan, backend, ExecOptions(duration_s=20, seed=seed, progress=False))
        with open(f'{M.PICKLES}/run_{tag}.pkl', 'wb') as f:
            pickle.dump({'batches': res.batches, 'records': res.records, 'arrivals': dict(res.arrivals),
                         'summary': res.summary, 'load': (l0, os.getloadavg()[0])}, f)
        print(tag, res.summary.slo_attainment, res.summary.p99_ms, 'load', l0, os.getloadavg()[0], flush=True)

if __name__ == '__main__':
    main()

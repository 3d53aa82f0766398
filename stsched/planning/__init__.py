"""The planning layer: loops that plan, judge and plan again, above the solvers and the simulator.

- `stsched.planning.attainment`: plan-then-simulate head-room (per-service rate factors raised until the plan's
  simulated SLO attainment meets a target);
- `stsched.planning.headroom`: plan for H x the rates, judge at 1 x;
- `stsched.planning.adapt`: the re-planning controller over time-varying rates and its policies.

It reaches solvers only through the registry (`stsched.registry.run_solver`), by name; nothing below it imports it.
"""

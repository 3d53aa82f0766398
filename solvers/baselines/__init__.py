"""Re-implemented published schedulers, each registered as a "baseline" solver.

- `nexus`: Nexus's squishy bin packing, temporal sharing of whole GPUs (Shen et al., SOSP'19).
- `gslice`: GSLICE-like spatial-only sharing, one service per right-sized partition (Dhakal et al., SoCC'20).
- `gpulet`: gpulet's elastic partitioning with time sharing (Choi et al., USENIX ATC'22).
- `igniter`: iGniter's interference-aware greedy provisioning (Xu et al., IEEE TPDS 2023).
- `parvagpu`: ParvaGPU's configurator and allocator on MIG x MPS (Lee et al., SC'24).

Every module is a clean re-implementation from the paper and the public description of the system (docs/BASELINES.md
lists the sources, the reproduced results and every deviation).  `solvers/__init__.py` imports the modules.
"""

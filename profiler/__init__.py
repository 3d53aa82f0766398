"""Everything that touches hardware to measure it (docs/PROFILER.md).

* `profiler.zoo`: models in plain torch.nn with random weights (ResNet, VGG, MobileNetV2, BERT; tiny variants).
* `profiler.partitions`: one `PartitionBackend` interface; `cpu` (threads), `mps` (CUDA MPS), `sm` (CUDA green
  contexts), `gpu` (whole GPU, co-located streams).
* `profiler.measure`: warm-up, repeats, median; CUDA events on a GPU, perf_counter on the CPU.
* `profiler.sweep`: a resumable sweep written in the project's profile schema (data/README.md).

torch is optional for the project: nothing in `stsched`'s solver and simulator paths imports this package, and
this package imports torch only where a model is built or run.
"""

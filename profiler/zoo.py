"""A model zoo in plain `torch.nn` with random weights (no downloads, no torchvision).

Realistic members reproduce the published architectures layer for layer (`profiler.nets`), so their parameter
counts equal the reference implementations' and `data/models.csv`: ResNet-18/50, VGG-16, MobileNetV2 and a
BERT-base encoder.  Tiny members keep the same structure at a fraction of the width and input size, for fast CPU
tests.  This module is importable without torch (names, shapes, sizes); `build` and `make_input` import it.

Every model takes one batch from `make_input(name, batch)` and is run in `eval()` / inference mode, fp32.
`ModelSpec.params` is the exact parameter count (a test builds every model on the `meta` device and checks it);
`weights_mb` = params x 4 bytes in MiB, the convention of `data/models.csv`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from stsched.errors import InputError


def _net(cls: str, *args: Any) -> Callable[[], Any]:
    def make() -> Any:
        from profiler import nets

        if cls == "ResNet":
            block = {"basic": nets.BasicBlock, "bottleneck": nets.Bottleneck}[args[0]]
            return nets.ResNet(block, *args[1:])
        return getattr(nets, cls)(*args)
    return make


# -- the zoo --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """A zoo member: `input_shape` is one sample's shape (C, H, W) for images, (seq_len,) for token ids."""

    name: str
    family: str  # resnet | vgg | mobilenet | bert
    input_shape: tuple[int, ...]
    params: int  # exact parameter count (checked by tests/profiler/test_profiler_units.py)
    build: Callable[[], Any] = field(repr=False, compare=False)
    tokens: bool = False  # input is int64 token ids in [0, vocab)
    vocab: int = 0
    tiny: bool = False
    source: str = "zoo (profiler.nets, random weights)"  # where the model came from (meta.json `models`)

    @property
    def weights_mb(self) -> float:
        """fp32 weights in MiB, rounded like data/models.csv."""
        return round(self.params * 4 / 2 ** 20, 3)


ZOO: dict[str, ModelSpec] = {s.name: s for s in (
    ModelSpec("resnet18", "resnet", (3, 224, 224), 11_689_512, _net("ResNet", "basic", (2, 2, 2, 2))),
    ModelSpec("resnet50", "resnet", (3, 224, 224), 25_557_032, _net("ResNet", "bottleneck", (3, 4, 6, 3))),
    ModelSpec("vgg16", "vgg", (3, 224, 224), 138_357_544, _net(
        "VGG", (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"))),
    ModelSpec("mobilenetv2", "mobilenet", (3, 224, 224), 3_504_872, _net("MobileNetV2")),
    ModelSpec("bert-base", "bert", (128,), 109_482_240, _net("BertEncoder", 12, 768, 12, 3072), tokens=True,
              vocab=30522),
    ModelSpec("resnet-tiny", "resnet", (3, 64, 64), 322_356,
              _net("ResNet", "basic", (1, 1, 1, 1), (16, 32, 64, 128), 16, 100), tiny=True),
    ModelSpec("vgg-tiny", "vgg", (3, 32, 32), 217_796,
              _net("VGG", (16, "M", 32, "M", 64, 64, "M"), 2, 256, 100), tiny=True),
    ModelSpec("mobilenetv2-tiny", "mobilenet", (3, 64, 64), 366_212, _net("MobileNetV2", 0.25, 100), tiny=True),
    ModelSpec("bert-tiny", "bert", (32,), 4_385_920, _net("BertEncoder", 2, 128, 2, 512), tokens=True,
              vocab=30522, tiny=True),
)}

#: names other data sets use for zoo members (data/README.md, "same network, different names")
ALIASES: dict[str, str] = {"mobilenet": "mobilenetv2", "mobilenet_v2": "mobilenetv2", "bert": "bert-base"}


def resolve(name: str) -> ModelSpec:
    """The zoo member called `name` (or an alias of it); InputError naming the known models otherwise."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in ZOO:
        from profiler import custom  # a model registered with `--models NAME=SPEC` (profiler.custom)

        cm = custom.lookup(key)
        if cm is not None:
            return ModelSpec(cm.name, "custom", cm.input_shape, cm.params, lambda: custom.builder(cm)(),
                             tokens=cm.tokens, vocab=cm.vocab, source=cm.source)
        raise InputError(f"unknown model {name!r} (zoo: {', '.join(ZOO)}; aliases: {', '.join(ALIASES)}; or your "
                         f"own: pkg.module:factory, tv:NAME, hf:CONFIG)")
    return ZOO[key]


def build(name: str, device: Any = "cpu", seed: int = 0) -> Any:
    """A zoo model (torch.nn.Module) with seeded random weights, in eval mode, on `device`."""
    import torch

    spec = resolve(name)
    torch.manual_seed(seed)
    with torch.device(device):
        model = spec.build()
    return model.eval()


def make_input(name: str, batch: int, device: Any = "cpu", seed: int = 0) -> Any:
    """One seeded random batch (a torch.Tensor) for a zoo model."""
    import torch

    spec = resolve(name)
    if batch < 1:
        raise InputError(f"batch must be >= 1, got {batch}")
    g = torch.Generator().manual_seed(seed)
    if spec.tokens:
        x = torch.randint(0, spec.vocab, (batch, *spec.input_shape), generator=g)
    else:
        x = torch.randn((batch, *spec.input_shape), generator=g)
    return x.to(device)

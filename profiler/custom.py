"""A researcher's own models in the profiler, beside the zoo: `pkg.module:factory`, `tv:NAME`, `hf:CONFIG`.

* `pkg.module:factory`: an importable callable that returns a `torch.nn.Module`.  One sample's input shape comes
  from `--input-shape` (`3x224x224`, or `128` for token ids with `--vocab`), else from an `example_input`
  attribute (one sample, a tensor) of the factory or of the module it returns.
* `tv:NAME`: a torchvision architecture (`torchvision.models.get_model(NAME, weights=None)`), random weights,
  input 3x224x224 unless `--input-shape` says otherwise; only where torchvision is installed.
* `hf:CONFIG`: a Hugging Face transformers architecture built from its config class with random weights
  (`transformers.AutoModel.from_config(transformers.CONFIG())`, no hub access): token ids of length 128 (or
  `--input-shape`) below the config's `vocab_size`, or images when the config has `image_size`; only where
  transformers is installed.
* `NAME=SPEC` names the model `NAME` in the profile; otherwise the name is derived from the spec in lower case
  (`tv:resnet18` -> `tv-resnet18`, `hf:BertConfig` -> `hf-bertconfig`, `mypkg.nets:make_mlp` -> `nets-make-mlp`).

`register` checks the spec in this process (imports it, builds it once on CPU, counts its parameters) and records
it in the environment variable `STSCHED_CUSTOM_MODELS` (JSON), which the profiler's worker processes inherit, so
that `profiler.zoo.resolve` finds it there by name.  The sweep writes each model's `source` into meta.json.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any, Callable

from stsched.errors import InputError, reraise_interrupt

ENV = "STSCHED_CUSTOM_MODELS"
DEFAULT_IMAGE = (3, 224, 224)
DEFAULT_TOKENS = 128


@dataclass(frozen=True)
class CustomModel:
    """A registered model: `kind` module | torchvision | transformers; `target` what is imported or built."""

    name: str
    kind: str
    target: str
    input_shape: tuple[int, ...]
    tokens: bool = False
    vocab: int = 0
    params: int = 0
    path: str = ""  # a sys.path entry that the module needs (where it was found in the registering process)
    source: str = ""


def is_custom(text: str) -> bool:
    """A model argument that is not a zoo name: it names a spec (`:`) or a name for one (`=`)."""
    return ":" in text or "=" in text


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(x) for x in re.split(r"[x,]", text.strip().lower()) if x)
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise InputError(f"--input-shape {text!r}: expected sizes >= 1 such as 3x224x224 or 128")
    return shape


def _name(spec: str) -> str:
    if spec.startswith(("tv:", "hf:")):
        base = spec.replace(":", "-", 1)
    else:
        module, _, attr = spec.partition(":")
        base = f"{module.rsplit('.', 1)[-1]}-{attr}"
    return re.sub(r"[^a-z0-9.]+", "-", base.lower()).strip("-")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _import(package: str, spec: str) -> Any:
    try:
        return importlib.import_module(package)
    except ImportError:
        raise InputError(f"model {spec!r}: {package} is not installed here (pip install {package})") from None


def _import_user(module: str, spec: str) -> Any:
    """The user's module: any failure of its import (missing, a syntax error, an exception at import time) is one
    line naming the model, not a traceback."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        reraise_interrupt(e)  # an interrupt while a native extension loads arrives as ImportError
        raise InputError(f"model {spec!r}: cannot import {module!r} ({e})") from None
    except Exception as e:  # noqa: BLE001 - the user's code: one line saying what failed
        reraise_interrupt(e)
        raise InputError(f"model {spec!r}: importing {module!r} failed: {type(e).__name__}: {e}") from None


def _forward_check(arg: str, model: Any, cm: CustomModel) -> None:
    """One sample through the model on CPU (no gradients): a wrong --input-shape or --vocab is refused here, before
    any folder is written or worker started (it was a worker's traceback, exit 1, after meta.json was written)."""
    import torch

    g = torch.Generator().manual_seed(0)
    x = (torch.randint(0, max(cm.vocab, 1), (1, *cm.input_shape), generator=g) if cm.tokens
         else torch.randn((1, *cm.input_shape), generator=g))
    try:
        with torch.no_grad():
            model.eval()
            model(x)
    except Exception as e:  # noqa: BLE001 - the user's model: one line saying what failed
        reraise_interrupt(e)
        kind = f"token ids below {cm.vocab}" if cm.tokens else "floats"
        raise InputError(f"model {arg!r}: one sample of shape {'x'.join(map(str, cm.input_shape))} ({kind}) does "
                         f"not run through it: {type(e).__name__}: {e} (check --input-shape / --vocab)") from None


def _factory(cm: CustomModel) -> Callable[[], Any]:
    module, _, attr = cm.target.partition(":")
    if cm.path and cm.path not in sys.path:
        sys.path.insert(0, cm.path)
    mod = _import_user(module, cm.target)
    fn = getattr(mod, attr, None)
    if not callable(fn):
        raise InputError(f"model {cm.target!r}: {module} has no callable {attr!r}")
    return fn


def builder(cm: CustomModel) -> Callable[[], Any]:
    """A callable that builds the model (random weights) in the current torch default device."""
    if cm.kind == "torchvision":
        tv = _import("torchvision", cm.target)
        return lambda: tv.models.get_model(cm.target, weights=None)
    if cm.kind == "transformers":
        tr = _import("transformers", cm.target)
        config = getattr(tr, cm.target)
        return lambda: tr.AutoModel.from_config(config())
    return _factory(cm)


def _module_path(module: str) -> str:
    """The sys.path entry under which `module` was found (so that worker processes can import it too)."""
    mod = sys.modules.get(module) or importlib.import_module(module)
    origin = getattr(mod, "__file__", None)
    if not origin:
        return ""
    depth = module.count(".") + (2 if os.path.basename(origin) == "__init__.py" else 1)
    path = os.path.abspath(origin)
    for _ in range(depth):
        path = os.path.dirname(path)
    return path


def _spec(name: str, spec: str, shape: tuple[int, ...] | None, vocab: int | None) -> CustomModel:
    if spec.startswith("tv:"):
        target = spec[3:]
        tv = _import("torchvision", spec)
        if target not in tv.models.list_models():
            raise InputError(f"model {spec!r}: torchvision has no architecture {target!r}")
        return CustomModel(name, "torchvision", target, shape or DEFAULT_IMAGE,
                           source=f"torchvision {_version('torchvision')} models.get_model({target!r}, weights=None)")
    if spec.startswith("hf:"):
        target = spec[3:]
        tr = _import("transformers", spec)
        config_cls = getattr(tr, target, None)
        if config_cls is None or not target.endswith("Config"):
            raise InputError(f"model {spec!r}: transformers has no config class {target!r} (e.g. BertConfig)")
        config = config_cls()
        source = f"transformers {_version('transformers')} AutoModel.from_config({target}()), random weights"
        if hasattr(config, "image_size") and not hasattr(config, "vocab_size"):
            size = int(config.image_size if isinstance(config.image_size, int) else config.image_size[0])
            image = (int(getattr(config, "num_channels", 3)), size, size)
            return CustomModel(name, "transformers", target, shape or image, source=source)
        return CustomModel(name, "transformers", target, shape or (DEFAULT_TOKENS,), tokens=True,
                           vocab=int(vocab or config.vocab_size), source=source)
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise InputError(f"model {spec!r}: expected pkg.module:factory, tv:NAME or hf:CONFIG")
    _import_user(module, spec)
    cm = CustomModel(name, "module", spec, shape or (), tokens=vocab is not None, vocab=int(vocab or 0),
                     path=_module_path(module), source=f"python {spec}")
    return cm


def register(arg: str, input_shape: tuple[int, ...] | None = None, vocab: int | None = None) -> str:
    """Check `arg` (`[NAME=]SPEC`), record it for this process and its workers; returns the profile's name."""
    import torch

    name, eq, spec = arg.partition("=")
    if not eq:
        name, spec = _name(arg), arg
    name = name.strip().lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
        raise InputError(f"model {arg!r}: name {name!r} must be lower case letters, digits, '.', '_' or '-'")
    from profiler.zoo import ZOO

    if name in ZOO:
        raise InputError(f"model {arg!r}: {name!r} is a zoo model; give another name (NAME=SPEC)")
    cm = _spec(name, spec, input_shape, vocab)
    torch.manual_seed(0)
    with torch.device("cpu"):
        try:
            model = builder(cm)()
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001 - the user's code: one line saying what failed
            reraise_interrupt(e)
            raise InputError(f"model {arg!r}: building it failed: {type(e).__name__}: {e}") from None
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"model {arg!r}: the factory returned {type(model).__name__}, not a torch.nn.Module")
    if not cm.input_shape:
        example = getattr(builder(cm), "example_input", None) if cm.kind == "module" else None
        example = example if example is not None else getattr(model, "example_input", None)
        if not isinstance(example, torch.Tensor):
            raise InputError(f"model {arg!r}: give --input-shape (one sample, e.g. 3x224x224) or an example_input "
                             f"attribute (a tensor of one sample) on the factory or the module")
        tokens = not example.is_floating_point()
        if vocab is not None and not tokens:  # it would be ignored: the example says the inputs are floats
            raise InputError(f"model {arg!r}: --vocab {vocab} given, but its example_input is floats (give "
                             f"--input-shape with --vocab for token ids)")
        cm = CustomModel(cm.name, cm.kind, cm.target, tuple(int(d) for d in example.shape), tokens,
                         int(example.max()) + 1 if tokens else 0, path=cm.path, source=cm.source)
    _forward_check(arg, model, cm)
    cm = CustomModel(**{**asdict(cm), "params": sum(p.numel() for p in model.parameters())})
    table = registered()
    table[name] = cm
    os.environ[ENV] = json.dumps({k: asdict(v) for k, v in table.items()})
    return name


def registered() -> dict[str, CustomModel]:
    """The models registered in this process or inherited from the parent (`STSCHED_CUSTOM_MODELS`)."""
    raw = os.environ.get(ENV)
    if not raw:
        return {}
    try:
        table = json.loads(raw)
        return {k: CustomModel(**{**v, "input_shape": tuple(v["input_shape"])}) for k, v in table.items()}
    except (ValueError, TypeError, KeyError) as e:
        raise InputError(f"${ENV}: not a table of registered models ({e})") from None


def lookup(name: str) -> CustomModel | None:
    return registered().get(name.lower())

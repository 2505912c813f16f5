"""FLOPs of a PyTorch model's forward pass, counted as bench.measure.flops counts a Keras model's.

PyTorch's own counter (torch.utils.flop_counter.FlopCounterMode) counts convolutions, matrix products and
attention as their operators run, a multiply-add as two FLOPs, biases left out. Forward hooks on the model's
modules add, by module type, what the Keras counter counts and PyTorch's does not:

- normalisation (batch, layer, group, instance, RMS): 2 per output element;
- activations (torch.nn's and timm's, softmax included): 1 per output element;
- pooling: one per element of each window; adaptive (global) pooling: one per input element;
- dropout, drop path, identity, flatten, padding, upsampling, embedding look-ups: none.

A leaf module that ran, did no matrix product and has no rule here is named in `Flops.uncounted` (the figure is
then a lower bound). Arithmetic a module's forward does inline rather than through a submodule (a residual
block's `x += shortcut`) is seen by no hook and not counted (docs/method.md gives its size for ResNet-18).

torch is imported only where a count is taken: the harness's own environment has none.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from bench.measure.flops import Flops

# Normalisation layers by class name, for libraries' own (timm's RmsNorm, FrozenBatchNorm2d, BatchNormAct2d...):
# torch.nn's are recognised by class.
NORM_NAME = re.compile(r"(Batch|Layer|Group|Instance|Rms|RMS|Simple)Norm(\d?d)?(Act\d?d)?(Fp32)?\d?$")
# Modules of these torch.nn files compute nothing (they move, drop or look values up).
FREE_MODULES = ("torch.nn.modules.dropout", "torch.nn.modules.padding", "torch.nn.modules.flatten",
                "torch.nn.modules.pixelshuffle", "torch.nn.modules.channelshuffle", "torch.nn.modules.sparse",
                "torch.nn.modules.upsampling", "torch.nn.modules.container")
FREE_NAMES = frozenset({"Identity", "DropPath", "DropBlock2d", "DropBlockFast2d"})
# Activation modules: torch.nn's file of them (MultiheadAttention lives there too: its products are counted by
# PyTorch's counter) and timm's.
ACTIVATION_MODULES = ("torch.nn.modules.activation", "timm.layers.activations")
ADAPTIVE_POOL_MODULES = ("timm.layers.adaptive_avgmax_pool",)
COUNTED_BY_TORCH = frozenset({"MultiheadAttention"})


def forward_flops(model: Any, run: Callable[[], object], examples: int) -> Flops:
    """FLOPs of one example's forward pass through `model` (a torch.nn.Module): `run()` passes a batch of
    `examples` examples through it once, here in evaluation mode without gradients, so the count changes
    neither the weights, nor batch statistics, nor the random stream; each module's mode is restored after."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    if examples < 1:
        raise ValueError(f"a batch of {examples} examples has no forward pass to count")
    counter = FlopCounterMode(display=False)
    hooks = _Hooks(counter)
    modes = [(module, module.training) for module in model.modules()]
    handles = []
    for module in model.modules():
        kind = module_kind(module)
        if kind is not None:
            handles.append(module.register_forward_pre_hook(hooks.before))
            handles.append(module.register_forward_hook(hooks.after(kind)))
    try:
        model.eval()
        with torch.no_grad(), counter:
            run()
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training
    total = counter.get_total_flops() + hooks.flops
    return Flops(round(total / examples), tuple(sorted(hooks.uncounted)))


def module_kind(module: Any) -> str | None:
    """How a module's own work is counted: 'norm', 'activation', 'pool', 'adaptive_pool', 'free', 'leaf' (a
    leaf that must show matrix products to PyTorch's counter, else it is uncounted), or None (a container: its
    submodules are counted)."""
    from torch import nn
    from torch.nn.modules import batchnorm, pooling

    cls = type(module)
    name, home = cls.__name__, cls.__module__
    if isinstance(module, batchnorm._NormBase | nn.LayerNorm | nn.GroupNorm | nn.RMSNorm) or NORM_NAME.search(name):
        return "norm"  # also where it holds its activation as a submodule (timm's BatchNormAct2d)
    if any(True for _ in module.children()):
        return None
    if name in COUNTED_BY_TORCH:
        return "leaf"
    if home.startswith(FREE_MODULES) or name in FREE_NAMES:
        return "free"
    if home.startswith(ACTIVATION_MODULES):
        return "activation"
    if isinstance(module, pooling._AdaptiveAvgPoolNd | pooling._AdaptiveMaxPoolNd) or home.startswith(
            ADAPTIVE_POOL_MODULES):
        return "adaptive_pool"
    if isinstance(module, pooling._MaxPoolNd | pooling._AvgPoolNd | pooling._LPPoolNd):
        return "pool"
    return "leaf"


class _Hooks:
    """The FLOPs the module rules add while the counter runs, and the leaf modules nothing counted."""

    def __init__(self, counter: Any) -> None:
        self.counter = counter
        self.flops = 0
        self.uncounted: set[str] = set()
        self._entered: list[int] = []  # the counter's total as each running hooked module started

    def before(self, module: Any, args: tuple[Any, ...]) -> None:
        self._entered.append(self.counter.get_total_flops())

    def after(self, kind: str) -> Callable[[Any, tuple[Any, ...], Any], None]:
        def hook(module: Any, args: tuple[Any, ...], output: Any) -> None:
            products = self.counter.get_total_flops() - self._entered.pop()
            out, inp = _numel(output), _numel(args)
            if kind == "norm":
                self.flops += 2 * out
            elif kind == "activation":
                self.flops += out
            elif kind == "pool":
                self.flops += out * _window(module)
            elif kind == "adaptive_pool":
                self.flops += inp
            elif kind == "leaf" and not products:
                self.uncounted.add(type(module).__name__)

        return hook


def _numel(value: Any) -> int:
    """Elements of the first tensor in a module's output (or inputs)."""
    if hasattr(value, "numel") and hasattr(value, "shape"):
        return int(value.numel())
    if isinstance(value, list | tuple) and value:
        return _numel(value[0])
    return 0


def _window(module: Any) -> int:
    """Elements of a pooling window: its kernel size, an int standing for every spatial axis."""
    size = module.kernel_size
    if isinstance(size, int):
        axes = int(type(module).__name__[-2]) if re.search(r"\dd$", type(module).__name__) else 2
        return size**axes
    return math.prod(size)


def batch_size(batch: Any, key: str | None = None) -> int:
    """Examples in a batch as a training loop receives it (a tensor, or a dict, list or tuple of them): the
    length of `key`'s entry where the dict has it, else the leading axis of the first tensor found."""
    if key is not None and isinstance(batch, Mapping) and key in batch:
        return batch_size(batch[key])
    shape = getattr(batch, "shape", None)
    if shape is not None and len(shape) >= 1:
        return int(shape[0])
    values = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, list | tuple) else ()
    for value in values:
        found = batch_size(value)
        if found:
            return found
    return 0


__all__ = ["batch_size", "forward_flops", "module_kind"]

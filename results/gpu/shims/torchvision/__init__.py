"""A stand-in for torchvision where it is not installed, holding only what airbench 0.1.8 uses.

airbench's CifarLoader calls torchvision.transforms.Normalize on its image tensors, and torchvision.datasets
only to download CIFAR-10 when its files are missing (the peer writes them, so it never downloads). A
torchvision wheel must match the installed torch exactly, so a machine without network cannot get one;
results/gpu/run.sh puts this folder on PYTHONPATH only when `import torchvision` fails.
"""

from . import datasets, transforms

__all__ = ["datasets", "transforms"]

"""The PyTorch counter against hand counts and a published one; the tests that need torch run where it is
installed (AutoGluon's environment), the others everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from bench.measure.torch_flops import batch_size

# ResNet-18 at 224 px: 1.82 G multiply-adds in its convolutions and classifier (He et al. 2016, Table 1 gives
# 1.8 G; torchvision's model table 1.81 G), so 3.64 GFLOPs at two a multiply-add.
RESNET18_PUBLISHED_FLOPS = 2 * 1.82e9
# What the module rules add to it at 224 px, by hand: normalisation 2 x 2,483,712 conv outputs; ReLU 2,308,096
# outputs (after the stem and twice in each of the 8 blocks); the stem's 3x3 max pool 9 x 200,704 outputs; the
# global average pool its 25,088 inputs.
RESNET18_RULES_224 = 2 * 2_483_712 + 2_308_096 + 9 * 200_704 + 25_088


def test_batch_size_reads_the_label_else_the_first_tensor():
    images, labels = np.zeros((6, 1, 3, 8, 8)), np.zeros(6)
    assert batch_size({"timm_image_image": images, "timm_image_label": labels}, key="timm_image_label") == 6
    assert batch_size({"names": [], "image": images}) == 6
    assert batch_size([("a", np.zeros((4, 2)))]) == 4
    assert batch_size(np.zeros((5, 3)), key="label") == 5
    assert batch_size({"no": "tensor"}) == 0


def tiny_network():
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(4, 5))


def test_a_tiny_network_is_counted_exactly():
    torch = pytest.importorskip("torch")
    from bench.measure.torch_flops import forward_flops

    model = tiny_network()
    x = torch.ones(3, 3, 8, 8)
    flops = forward_flops(model, lambda: model(x), examples=3)
    # conv 2 x 4x8x8 outputs x 27; batch norm 2 x 256; ReLU 256; max pool 64 outputs x 4; global pool 64 inputs;
    # dense 2 x 4 x 5; flatten and dropout nothing.
    assert flops.forward == 2 * 256 * 27 + 2 * 256 + 256 + 64 * 4 + 64 + 2 * 20
    assert flops.complete


def test_counting_changes_neither_modes_nor_statistics():
    torch = pytest.importorskip("torch")
    from bench.measure.torch_flops import forward_flops

    model = tiny_network()
    model.train()
    model[6].eval()  # a module the caller set apart keeps its own mode
    stats = model[1].running_mean.clone()
    forward_flops(model, lambda: model(torch.randn(4, 3, 8, 8)), examples=4)
    assert model.training and model[1].training and not model[6].training
    assert torch.equal(model[1].running_mean, stats)


def test_a_module_with_no_rule_is_named_uncounted():
    torch = pytest.importorskip("torch")
    from torch import nn

    from bench.measure.torch_flops import forward_flops

    class Scale(nn.Module):
        def forward(self, x):
            return 2 * x

    model = nn.Sequential(nn.Linear(4, 4), Scale())
    flops = forward_flops(model, lambda: model(torch.ones(2, 4)), examples=2)
    assert flops.forward == 2 * 16 and flops.uncounted == ("Scale",)


@pytest.mark.parametrize("library", ["timm", "torchvision"])
def test_resnet18_matches_its_published_count(library):
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from bench.measure.torch_flops import forward_flops

    if library == "timm":
        model = pytest.importorskip("timm").create_model("resnet18", pretrained=False)
    else:
        model = pytest.importorskip("torchvision").models.resnet18()
    x = torch.zeros(2, 3, 224, 224)
    flops = forward_flops(model, lambda: model(x), examples=2)
    with torch.no_grad(), FlopCounterMode(display=False) as products:
        model(x)
    assert products.get_total_flops() / 2 == pytest.approx(RESNET18_PUBLISHED_FLOPS, rel=0.01)
    assert flops.forward - products.get_total_flops() / 2 == RESNET18_RULES_224
    assert flops.complete

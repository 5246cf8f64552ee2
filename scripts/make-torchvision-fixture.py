#!/usr/bin/env python3
"""Writes test/fixtures/torchvision/: small torchvision-layout ResNets with random weights.

Each case is a real torchvision.models.resnet.ResNet (its BasicBlock / Bottleneck, its
_make_layer and forward) whose stage widths are narrowed from 64/128/256/512 so the
fixtures stay small (torchvision hard-codes the widths in ResNet.__init__, which
NarrowResNet below repeats with a `widths` argument; module names, and so state_dict keys,
are torchvision's). For each case:

  <case>.safetensors   model.state_dict() (num_batches_tracked included, as torch saves it)
                       in the case's dtype (F32, F16 or BF16);
  cases.safetensors    <case>.input: the input batch, NHWC float32 [n, h, w, 3];
                       <case>.logits: the eval-mode logits [n, classes], float32, computed
                       from the weights as stored (rounded to the case's dtype and back);
  cases.json           the architecture of every case (what the test builds with models.resnet);
  architectures.json   the state_dict keys, shapes and dtypes of full-size torchvision models
                       (resnet18, resnet50, resnext50_32x4d, wide_resnet50_2; constructed, not
                       downloaded), so the test can check names and layouts at full size.

Batch-norm statistics are made non-trivial: random gammas and betas, then a few train-mode
forwards (momentum 0.5) on shifted and scaled inputs, then eval().

Usage: python3 scripts/make-torchvision-fixture.py [out_dir]   (needs torch, torchvision, safetensors)
"""
import json
import os
import sys

import torch
import torch.library
from torch import nn

try:
    import torchvision  # noqa: F401
except RuntimeError:
    # A torchvision wheel built for CUDA torch on a CPU-only torch cannot load its C ops
    # (nms, roi_align, …); ResNet needs none of them. Skip their fake-kernel registrations.
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _register_fake = torch.library.register_fake
    torch.library.register_fake = lambda *a, **k: (lambda f: f)
    try:
        import torchvision  # noqa: F401
    finally:
        torch.library.register_fake = _register_fake
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from safetensors.torch import save_file


class NarrowResNet(ResNet):
    """torchvision's ResNet.__init__ with the stem and stage widths as an argument."""

    def __init__(self, block, layers, widths, num_classes, groups=1, width_per_group=64):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = widths[0]
        self.dilation = 1
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3] * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


# name, block, blocks per stage, stage widths (widths[0] is also the stem's), groups,
# width_per_group, stored dtype, classes, input [n, h, w, c]
CASES = [
    dict(name="resnet_basic", block="basic", layers=[2, 1, 1, 1], widths=[8, 16, 24, 32], groups=1,
         widthPerGroup=64, dtype="F32", classes=5, input=[2, 40, 48, 3]),
    dict(name="resnext_bottleneck", block="bottleneck", layers=[1, 2, 1, 1], widths=[8, 16, 24, 32], groups=4,
         widthPerGroup=16, dtype="F16", classes=7, input=[2, 36, 44, 3]),
    dict(name="wide_bottleneck", block="bottleneck", layers=[1, 1, 1, 1], widths=[4, 8, 12, 16], groups=1,
         widthPerGroup=128, dtype="BF16", classes=4, input=[3, 32, 40, 3]),
]
DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def make(case):
    block = BasicBlock if case["block"] == "basic" else Bottleneck
    model = NarrowResNet(block, case["layers"], case["widths"], case["classes"], case["groups"], case["widthPerGroup"])
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.momentum = 0.5
        n, h, w, c = case["input"]
        model.train()
        for _ in range(4):
            model(torch.randn(8, c, h, w) * 1.7 + 0.3)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.1
        model.eval()
        # Round every tensor to the stored dtype and back, so the reference logits are those
        # of exactly the weights in the file.
        dtype = DTYPES[case["dtype"]]
        state = model.state_dict()
        stored = {k: (v.to(dtype).contiguous() if v.is_floating_point() else v.contiguous()) for k, v in state.items()}
        model.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in stored.items()})
        x = torch.randn(n, c, h, w)
        logits = model(x)
    return stored, x.permute(0, 2, 3, 1).contiguous(), logits.contiguous()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "torchvision")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(20240611)
    io = {}
    for case in CASES:
        stored, x, logits = make(case)
        save_file(stored, os.path.join(out, f"{case['name']}.safetensors"), metadata={"format": "pt"})
        os.chmod(os.path.join(out, f"{case['name']}.safetensors"), 0o644)
        io[f"{case['name']}.input"] = x
        io[f"{case['name']}.logits"] = logits
        params = sum(v.numel() for k, v in stored.items() if v.is_floating_point())
        print(f"{case['name']}: {len(stored)} tensors, {params} values, {case['dtype']}, logits max |.| {logits.abs().max():.3f}")
    save_file(io, os.path.join(out, "cases.safetensors"))
    os.chmod(os.path.join(out, "cases.safetensors"), 0o644)
    meta = {
        "generatedBy": f"scripts/make-torchvision-fixture.py (torch {torch.__version__}, torchvision {torchvision.__version__})",
        "cases": CASES,
    }
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")

    architectures = {}
    for name in ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2"]:
        model = getattr(torchvision.models, name)(weights=None)
        architectures[name] = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in model.state_dict().items()]
    with open(os.path.join(out, "architectures.json"), "w") as f:
        f.write("{\n")
        f.write(",\n".join(f'  "{name}": {json.dumps(entries, separators=(",", ":"))}' for name, entries in architectures.items()))
        f.write("\n}\n")


if __name__ == "__main__":
    main()

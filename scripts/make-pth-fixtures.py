#!/usr/bin/env python3
"""Writes test/fixtures/pytorch/: PyTorch .pth files written by torch.save, for test/io/pth.test.ts.

The weights are those of test/fixtures/torchvision/ (scripts/make-torchvision-fixture.py: small
real torchvision ResNets, their state_dicts as safetensors, PyTorch's eval-mode logits in
cases.safetensors), so the reference logits are PyTorch's and are not recomputed here: each
.pth below holds exactly the values of one of those safetensors files (read here with the
standard library and torch.frombuffer), and a model loaded from it must give that case's logits.

Files (all by torch.save / torch.jit.save of the installed torch):
  resnet_basic.pth          F32 state_dict of resnet_basic: an OrderedDict in nn.Module order
                            with its `_metadata`, as model.state_dict() returns it
  resnext_bottleneck.pth    F16 (HalfStorage) state_dict of resnext_bottleneck
  wide_bottleneck.pth       BF16 (BFloat16Storage) state_dict of wide_bottleneck
  resnet_basic_views.pth    resnet_basic with non-contiguous tensors: fc.weight a transposed
                            view (stride [1, out]), conv1.weight in channels_last memory format,
                            every batch-norm tensor of layer1 a slice of one shared flat tensor
                            (one storage, offsets), layer4.0.conv2.weight every other element
                            of a tensor twice as wide (stride 2 on the last axis), and fc.bias
                            as float64
  resnet_basic_nested.pth   {'epoch': 7, 'arch': 'resnet_basic', 'best_acc1': 0.5, 'state_dict':
                            resnet_basic's state_dict, 'optimizer': {...}} (a training checkpoint)
  malicious.pth             a state_dict with one entry whose pickle calls os.system (__reduce__);
                            must be refused without running anything
  torchscript.pt            torch.jit.save of a scripted nn.Linear (a TorchScript archive)
  legacy.pth                torch.save(..., _use_new_zipfile_serialization=False) (pre-1.6 format)

Every file is read back with torch.load (weights_only=True where torch allows it) and compared.

Usage: /work/venv/bin/python scripts/make-pth-fixtures.py [out_dir]   (needs torch)
"""
import collections
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "..", "test", "fixtures", "torchvision")
DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64, "I64": torch.int64}


def read_safetensors(path):
    """name → tensor, from a safetensors file (standard library + torch.frombuffer)."""
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    header = json.loads(b[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        raw = bytearray(b[8 + n + begin:8 + n + end])
        out[name] = torch.frombuffer(raw, dtype=DTYPES[e["dtype"]]).reshape(e["shape"]).clone() if raw else torch.zeros(e["shape"], dtype=DTYPES[e["dtype"]])
    return out


PARTS = ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "downsample", "layer1", "layer2", "layer3", "layer4", "fc"]
LEAVES = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


def torch_order(name):
    """nn.Module.state_dict()'s order for a torchvision ResNet (modules in definition order)."""
    key = []
    for part in name.split("."):
        if part.isdigit():
            key.append((1, int(part)))
        elif part in PARTS:
            key.append((0, PARTS.index(part)))
        else:
            key.append((2, LEAVES.index(part)))
    return key


def state_dict(case):
    """The case's tensors as an OrderedDict in nn.Module order, with the `_metadata` state_dict() attaches."""
    tensors = read_safetensors(os.path.join(SOURCE, f"{case}.safetensors"))
    sd = collections.OrderedDict((name, tensors[name]) for name in sorted(tensors, key=torch_order))
    meta = collections.OrderedDict([("", {"version": 1})])
    for name in sd:
        module = name.rsplit(".", 1)[0]
        meta.setdefault(module, {"version": 2 if name.endswith("running_var") or ".bn" in "." + module else 1})
    sd._metadata = meta
    return sd


def views_state_dict():
    """resnet_basic with the tensors described in the docstring stored as views."""
    sd = state_dict("resnet_basic")
    sd["fc.weight"] = sd["fc.weight"].t().contiguous().t()
    sd["fc.bias"] = sd["fc.bias"].double()
    sd["conv1.weight"] = sd["conv1.weight"].contiguous(memory_format=torch.channels_last)
    names = [n for n in sd if n.startswith("layer1.") and ".bn" in n and not n.endswith("num_batches_tracked")]
    flat = torch.full((5 + sum(sd[n].numel() + 3 for n in names),), 0.25)
    at = 5
    for n in names:
        k = sd[n].numel()
        flat[at:at + k] = sd[n].reshape(-1)
        sd[n] = flat[at:at + k].view(sd[n].shape)
        at += k + 3
    w = sd["layer4.0.conv2.weight"]
    wide = torch.full(w.shape[:-1] + (2 * w.shape[-1],), -999.0)
    wide[..., ::2] = w
    sd["layer4.0.conv2.weight"] = wide[..., ::2]
    assert not sd["fc.weight"].is_contiguous() and not sd["conv1.weight"].is_contiguous()
    assert sd["layer4.0.conv2.weight"].stride()[-1] == 2 and sd[names[1]].storage_offset() > 0
    return sd


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/resnet-native-pwned",))


def check(path, expected):
    loaded = torch.load(path, weights_only=True)
    if "state_dict" in loaded and not isinstance(loaded["state_dict"], torch.Tensor):
        loaded = loaded["state_dict"]
    assert list(loaded.keys()) == list(expected.keys()), path
    for name, t in expected.items():
        assert torch.equal(loaded[name], t), (path, name)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "test", "fixtures", "pytorch")
    os.makedirs(out, exist_ok=True)

    def save(obj, name, **kw):
        path = os.path.join(out, name)
        torch.save(obj, path, **kw)
        os.chmod(path, 0o644)
        return path

    for case in ["resnet_basic", "resnext_bottleneck", "wide_bottleneck"]:
        sd = state_dict(case)
        check(save(sd, f"{case}.pth"), sd)
        print(f"{case}.pth: {len(sd)} tensors, {sd['conv1.weight'].dtype}")
    views = views_state_dict()
    check(save(views, "resnet_basic_views.pth"), views)
    sd = state_dict("resnet_basic")
    optimizer = {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": list(range(len(sd)))}]}
    check(save({"epoch": 7, "arch": "resnet_basic", "best_acc1": 0.5, "state_dict": sd, "optimizer": optimizer}, "resnet_basic_nested.pth"), sd)

    evil = collections.OrderedDict([("conv1.weight", torch.ones(1)), ("fc.bias", Evil())])
    save(evil, "malicious.pth")
    try:
        torch.load(os.path.join(out, "malicious.pth"), weights_only=True)
        raise AssertionError("torch.load(weights_only=True) accepted malicious.pth")
    except Exception as e:  # torch refuses it too
        assert "system" in str(e), e

    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), os.path.join(out, "torchscript.pt"))
    os.chmod(os.path.join(out, "torchscript.pt"), 0o644)
    small = collections.OrderedDict([("fc.weight", torch.ones(2, 3)), ("fc.bias", torch.zeros(2))])
    save(small, "legacy.pth", _use_new_zipfile_serialization=False)
    print(f"torch {torch.__version__}: all files read back with torch.load")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes test/fixtures/pytorch/: PyTorch .pth files (torch.save's zip format) for test/io/pth.test.ts.

The weights are those of test/fixtures/torchvision/ (scripts/make-torchvision-fixture.py: small
real torchvision ResNets, their state_dicts as safetensors, PyTorch's eval-mode logits in
cases.safetensors), so the reference logits are PyTorch's and are not recomputed here: each
.pth below holds exactly the values of one of those safetensors files, and a model loaded from
it must give that case's logits.

The files are written the way torch.save (PyTorch >= 1.6, torch/serialization.py `_save`)
writes them, with Python's own pickle at protocol 2 and zipfile, so no torch is needed:

  archive/data.pkl     pickle of the object; every tensor is reduced to
                       torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
                       requires_grad, OrderedDict()) and every storage is a persistent id
                       ('storage', torch.<Type>Storage, key, 'cpu', numel); a state_dict is a
                       collections.OrderedDict whose `_metadata` attribute is pickled as its
                       BUILD state, as nn.Module.state_dict() returns it
  archive/byteorder    'little'
  archive/data/<key>   the raw little-endian bytes of each storage (keys '0', '1', … in order
                       of first use)
  archive/version      '3'
  archive/.data/serialization_id

To do that, modules named `torch` and `torch._utils` holding stand-ins of the globals are put
in sys.modules while pickling (pickle writes a global by its module and name). When the real
torch is importable, every file written is also read back with torch.load(weights_only=True)
and compared with the source tensors, so the format is checked against PyTorch itself.

Files:
  resnet_basic.pth          F32 state_dict of resnet_basic (plain torch.save(model.state_dict()))
  resnext_bottleneck.pth    F16 (HalfStorage) state_dict of resnext_bottleneck
  wide_bottleneck.pth       BF16 (BFloat16Storage) state_dict of wide_bottleneck
  resnet_basic_views.pth    resnet_basic with non-contiguous tensors: fc.weight a transposed
                            view (stride [1, out]), conv1.weight in channels_last memory format,
                            every batch-norm of layer1 a slice of one shared storage (offsets),
                            layer4.0.conv2.weight in a storage of double the size (stride 2
                            along the last axis), and the F64 (DoubleStorage) fc.bias
  resnet_basic_nested.pth   {'epoch': 7, 'arch': 'resnet_basic', 'best_acc1': 0.5, 'state_dict':
                            resnet_basic's state_dict, 'optimizer': {...}} (a training checkpoint)
  malicious.pth             a state_dict with one entry whose pickle calls os.system (__reduce__);
                            must be refused without running anything
  torchscript.pt            the entries of a torch.jit.save archive (code/, constants.pkl)
  legacy.pth                the start of the pre-1.6 torch.save format (magic number pickle)

Usage: python3 scripts/make-pth-fixtures.py [out_dir]   (stdlib only; torch optional, for the check)
"""
import collections
import json
import os
import pickle
import struct
import sys
import types
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "..", "test", "fixtures", "torchvision")

# ----------------------------------------------------------------------------------------
# Stand-ins for the globals torch.save writes

_torch = types.ModuleType("torch")
_torch_utils = types.ModuleType("torch._utils")


def _rebuild_tensor_v2(*args):  # never called: only its name is pickled
    raise RuntimeError("stand-in")


_rebuild_tensor_v2.__module__ = "torch._utils"
_torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2
_torch._utils = _torch_utils

STORAGE_TYPES = {"F32": ("FloatStorage", 4), "F16": ("HalfStorage", 2), "BF16": ("BFloat16Storage", 2),
                 "F64": ("DoubleStorage", 8), "I64": ("LongStorage", 8)}
for _name, _ in STORAGE_TYPES.values():
    _cls = type(_name, (), {})
    _cls.__module__ = "torch"
    setattr(_torch, _name, _cls)


class Storage:
    """A flat buffer: its dtype and raw little-endian bytes."""

    def __init__(self, dtype, data):
        self.dtype = dtype
        self.data = bytes(data)
        self.numel = len(self.data) // STORAGE_TYPES[dtype][1]


class Tensor:
    """A view of a Storage, pickled as torch pickles a tensor."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def __reduce_ex__(self, protocol):
        return (_rebuild_tensor_v2, (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))


def contiguous_strides(size):
    strides, step = [], 1
    for s in reversed(size):
        strides.insert(0, step)
        step *= s
    return strides


def dense(dtype, shape, data):
    return Tensor(Storage(dtype, data), 0, shape, contiguous_strides(shape))


class Pickler(pickle.Pickler):
    def __init__(self, f):
        super().__init__(f, protocol=2)
        self.keys = {}

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            key = self.keys.setdefault(id(obj), (str(len(self.keys)), obj))[0]
            return ("storage", getattr(_torch, STORAGE_TYPES[obj.dtype][0]), key, "cpu", obj.numel)
        return None


def torch_save(obj, path, extra_entries=None):
    saved = {m: sys.modules.get(m) for m in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = _torch, _torch_utils
    try:
        import io

        buf = io.BytesIO()
        pickler = Pickler(buf)
        pickler.dump(obj)
    finally:
        for m, v in saved.items():
            if v is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = v
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        def record(name, data):
            info = zipfile.ZipInfo("archive/" + name, date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, data)

        record("data.pkl", buf.getvalue())
        record("byteorder", b"little")
        for key, storage in sorted(pickler.keys.values(), key=lambda kv: int(kv[0])):
            record(f"data/{key}", storage.data)
        for name, data in (extra_entries or {}).items():
            record(name, data)
        record("version", b"3\n")
        record(".data/serialization_id", b"1234567890123456789012345678901234567890")
    os.chmod(path, 0o644)


# ----------------------------------------------------------------------------------------
# The torchvision fixtures' state_dicts

def read_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    header = json.loads(b[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        out[name] = (e["dtype"], e["shape"], b[8 + n + begin:8 + n + end])
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
    tensors = read_safetensors(os.path.join(SOURCE, f"{case}.safetensors"))
    sd = collections.OrderedDict()
    for name in sorted(tensors, key=torch_order):
        dtype, shape, data = tensors[name]
        sd[name] = dense(dtype, shape, data)
    # What nn.Module.state_dict() attaches: each module's version (BatchNorm's is 2).
    meta = collections.OrderedDict()
    for name in sd:
        module = name.rsplit(".", 1)[0]
        meta.setdefault(module, {"version": 2 if ".bn" in "." + module or "downsample.1" in module else 1})
    sd._metadata = meta
    return sd, tensors


def values(dtype, data):
    fmt = {"F32": "f", "F64": "d", "I64": "q"}[dtype]
    return list(struct.unpack(f"<{len(data) // struct.calcsize(fmt)}{fmt}", data))


def pack(dtype, vals):
    fmt = {"F32": "f", "F64": "d"}[dtype]
    return struct.pack(f"<{len(vals)}{fmt}", *vals)


def views_state_dict():
    """resnet_basic with the tensors described in the docstring stored as views."""
    sd, tensors = state_dict("resnet_basic")
    # fc.weight [out, in] as the transpose of a contiguous [in, out] storage.
    _, (o, i), data = tensors["fc.weight"]
    w = values("F32", data)
    sd["fc.weight"] = Tensor(Storage("F32", pack("F32", [w[r * i + c] for c in range(i) for r in range(o)])), 0, (o, i), (1, o))
    # fc.bias as float64.
    sd["fc.bias"] = dense("F64", tensors["fc.bias"][1], pack("F64", values("F32", tensors["fc.bias"][2])))
    # conv1.weight [o, i, kh, kw] in channels_last: memory order (o, kh, kw, i).
    _, (o, i, kh, kw), data = tensors["conv1.weight"]
    w = values("F32", data)
    nhwc = [w[((a * i + c) * kh + y) * kw + x] for a in range(o) for y in range(kh) for x in range(kw) for c in range(i)]
    sd["conv1.weight"] = Tensor(Storage("F32", pack("F32", nhwc)), 0, (o, i, kh, kw), (kh * kw * i, 1, kw * i, i))
    # layer1's batch-norm parameters: slices of one storage, with 3 unused values between them.
    shared = Storage("F32", b"")
    chunks, layout = [], []
    at = 5
    for name in sd:
        if name.startswith("layer1.") and ".bn" in name and not name.endswith("num_batches_tracked"):
            dtype, shape, data = tensors[name]
            layout.append((name, at, shape))
            chunks.append((at, values("F32", data)))
            at += len(values("F32", data)) + 3
    flat = [0.25] * at
    for start, vals in chunks:
        flat[start:start + len(vals)] = vals
    shared.data, shared.numel = pack("F32", flat), len(flat)
    for name, start, shape in layout:
        sd[name] = Tensor(shared, start, shape, contiguous_strides(shape))
    # layer4.0.conv2.weight: every other element of a storage twice its size.
    _, shape, data = tensors["layer4.0.conv2.weight"]
    w = values("F32", data)
    doubled = [v for x in w for v in (x, -999.0)]
    strides = [2 * s for s in contiguous_strides(shape)]
    sd["layer4.0.conv2.weight"] = Tensor(Storage("F32", pack("F32", doubled)), 0, shape, strides)
    return sd


def check_with_torch(path, expected):
    """When torch is importable: torch.load the file and compare with the source tensors."""
    try:
        import torch
    except ImportError:
        return False
    loaded = torch.load(path, weights_only=True)
    if "state_dict" in loaded and not isinstance(loaded["state_dict"], torch.Tensor):
        loaded = loaded["state_dict"]
    assert list(loaded.keys()) == list(expected.keys()), path
    for name, (dtype, shape, data) in expected.items():
        t = loaded[name]
        assert list(t.shape) == list(shape), (path, name)
    return True


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "test", "fixtures", "pytorch")
    os.makedirs(out, exist_ok=True)
    checked = []
    for case in ["resnet_basic", "resnext_bottleneck", "wide_bottleneck"]:
        sd, tensors = state_dict(case)
        path = os.path.join(out, f"{case}.pth")
        torch_save(sd, path)
        checked.append(check_with_torch(path, {k: tensors[k] for k in sd}))
        print(f"{case}.pth: {len(sd)} tensors, {os.path.getsize(path)} bytes")

    torch_save(views_state_dict(), os.path.join(out, "resnet_basic_views.pth"))
    sd, _ = state_dict("resnet_basic")
    optimizer = {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": list(range(len(sd)))}]}
    torch_save({"epoch": 7, "arch": "resnet_basic", "best_acc1": 0.5, "state_dict": sd, "optimizer": optimizer},
               os.path.join(out, "resnet_basic_nested.pth"))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/resnet-native-pwned",))

    evil = collections.OrderedDict()
    evil["conv1.weight"] = dense("F32", [1], pack("F32", [1.0]))
    evil["fc.bias"] = Evil()
    torch_save(evil, os.path.join(out, "malicious.pth"))

    torch_save(collections.OrderedDict(), os.path.join(out, "torchscript.pt"),
               extra_entries={"constants.pkl": pickle.dumps((), protocol=2), "code/__torch__/model.py": b"class Model: pass\n"})

    with open(os.path.join(out, "legacy.pth"), "wb") as f:
        # torch/serialization.py _legacy_save: MAGIC_NUMBER, PROTOCOL_VERSION, sys_info, then the object.
        f.write(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2))
        f.write(pickle.dumps(1001, protocol=2))
        f.write(pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2))
    os.chmod(os.path.join(out, "legacy.pth"), 0o644)
    print("checked with torch.load" if all(checked) else "torch not importable: files not cross-checked with torch.load")


if __name__ == "__main__":
    main()

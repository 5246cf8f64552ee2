#!/usr/bin/env python3
"""PyTorch (CPU, channels_last) and onnxruntime figures for bench/run.mjs and bench/inference_ab.mjs,
same models, batches and thread count as resnet-native. Prints one JSON object on stdout; progress
goes to stderr.

  python3 bench/python_reference.py --models resnet20,resnet18 --threads 2 --seconds 5 [--quick]
  python3 bench/python_reference.py ... --pytorch-only       (no onnxruntime)
  python3 bench/python_reference.py ... --onnxruntime-only   (no PyTorch timings)
  python3 bench/python_reference.py --models ... --export-onnx DIR   (writes DIR/<model>.onnx, times nothing)
  python3 bench/python_reference.py ... --onnxruntime-only --onnx-dir DIR   (runs DIR/<model>.onnx: no torch import)

The harnesses export once (--export-onnx) and then time onnxruntime in processes that never import
torch, so torch's thread pool cannot share the cores with onnxruntime's.

PyTorch: SGD-momentum training steps (forward, cross-entropy, backward, update) and inference
(inference_mode, eval) with the model and input in channels_last (BENCH_TORCH_LAYOUT=contiguous:
NCHW, PyTorch's default, faster for some models on some CPUs), torch.set_num_threads(threads).
onnxruntime: inference of the same eval-mode model exported with torch.onnx, intra-op threads =
threads. A framework that cannot be imported is reported with the reason, not skipped silently.
The models are written out here (no torchvision needed): the layouts equal torchvision's
resnet18 / resnet50 and Keras' CIFAR-10 ResNet-20 v1 (1×1 projection shortcuts without BN).
"""
import argparse
import json
import os
import sys
import tempfile
import time
import warnings

WORKLOADS = {
    "resnet20": {"size": 32, "classes": 10, "batch": 128},
    "resnet18": {"size": 224, "classes": 1000, "batch": 16},
    "resnet50": {"size": 224, "classes": 1000, "batch": 16},
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def build_models(nn):
    class Basic(nn.Module):
        expansion = 1

        def __init__(self, cin, width, stride, shortcut_bn=True):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.down = None
            if stride != 1 or cin != width:
                layers = [nn.Conv2d(cin, width, 1, stride, bias=False)]
                if shortcut_bn:
                    layers.append(nn.BatchNorm2d(width))
                self.down = nn.Sequential(*layers)

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return self.relu(y + (x if self.down is None else self.down(x)))

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, cin, width, stride, shortcut_bn=True):
            super().__init__()
            out = width * 4
            self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)  # v1.5: stride on the 3×3
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out)
            self.relu = nn.ReLU(inplace=True)
            self.down = None
            if stride != 1 or cin != out:
                self.down = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return self.relu(y + (x if self.down is None else self.down(x)))

    def imagenet(block, blocks, classes):
        layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        cin = 64
        for i, (n, width) in enumerate(zip(blocks, [64, 128, 256, 512])):
            for j in range(n):
                layers.append(block(cin, width, 2 if i > 0 and j == 0 else 1))
                cin = width * block.expansion
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
        return nn.Sequential(*layers)

    def cifar20(classes):
        layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True)]
        cin = 16
        for i, width in enumerate([16, 32, 64]):
            for j in range(3):
                layers.append(Basic(cin, width, 2 if i > 0 and j == 0 else 1, shortcut_bn=False))
                cin = width
        layers += [nn.AvgPool2d(8), nn.Flatten(), nn.Linear(cin, classes)]
        return nn.Sequential(*layers)

    return {
        "resnet20": lambda c: cifar20(c),
        "resnet18": lambda c: imagenet(Basic, [2, 2, 2, 2], c),
        "resnet50": lambda c: imagenet(Bottleneck, [3, 4, 6, 3], c),
    }


class Times(list):
    cpu_seconds = 0.0  # process CPU time of the loop (all threads)


def time_loop(step, seconds, min_iters, max_iters=10**9):
    times = Times()
    cpu0 = time.process_time()
    start = time.perf_counter()
    while (time.perf_counter() - start < seconds or len(times) < min_iters) and len(times) < max_iters:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.cpu_seconds = time.process_time() - cpu0
    return times


def summarize(times, batch, threads=None):
    total = sum(times)
    s = sorted(times)
    mid = len(s) // 2
    med = s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
    out = {"steps": len(times), "msPerStep": 1000 * total / len(times), "msMedian": 1000 * med, "imagesPerSecond": batch * len(times) / total}
    if threads and getattr(times, "cpu_seconds", 0) > 0:  # images per CPU-second × threads, as bench/suite/timing.mjs
        out["cpuImagesPerSecond"] = batch * len(times) * threads / times.cpu_seconds
    return out


def bench_torch(torch, builders, name, w, args):
    torch.manual_seed(1)
    layout = torch.contiguous_format if os.environ.get("BENCH_TORCH_LAYOUT") == "contiguous" else torch.channels_last
    model = builders[name](w["classes"]).to(memory_format=layout)
    x = torch.rand(w["batch"], 3, w["size"], w["size"]).to(memory_format=layout)
    y = torch.randint(0, w["classes"], (w["batch"],))
    one = x[:1].contiguous(memory_format=layout)
    min_iters = 2 if args.quick else 3
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    model.train()
    for _ in range(2):
        train_step()
    out = {"train": summarize(time_loop(train_step, args.seconds, min_iters), w["batch"], args.threads)}
    model.eval()
    with torch.inference_mode():
        for _ in range(2):
            model(x)
        out["infer"] = summarize(time_loop(lambda: model(x), args.seconds, min_iters), w["batch"], args.threads)
        for _ in range(3):
            model(one)
        out["latency"] = summarize(time_loop(lambda: model(one), min(args.seconds, 2), 5), 1)
    return model, out


def export_onnx(torch, model, w, path):
    """The eval-mode model as ONNX (opset 17, dynamic batch) at path."""
    dummy = torch.rand(1, 3, w["size"], w["size"])
    model = model.to(memory_format=torch.contiguous_format).eval()
    export = dict(input_names=["x"], output_names=["logits"], dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, opset_version=17)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TorchScript exporter needs no onnxscript
    try:
        torch.onnx.export(model, (dummy,), path, dynamo=False, **export)
    except TypeError:  # an older torch without the dynamo argument
        torch.onnx.export(model, (dummy,), path, **export)


def bench_onnxruntime(ort, path, w, args):
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    import numpy as np

    rng = np.random.default_rng(1)
    x = rng.random((w["batch"], 3, w["size"], w["size"]), dtype=np.float32)
    one = x[:1].copy()
    run = lambda a: sess.run(None, {"x": a})
    for _ in range(2):
        run(x)
    out = {"infer": summarize(time_loop(lambda: run(x), args.seconds, 2 if args.quick else 3), w["batch"], args.threads)}
    for _ in range(3):
        run(one)
    out["latency"] = summarize(time_loop(lambda: run(one), min(args.seconds, 2), 5), 1)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="resnet20,resnet18,resnet50")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--quick", action="store_true")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--pytorch-only", action="store_true", help="time only PyTorch")
    only.add_argument("--onnxruntime-only", action="store_true", help="time only onnxruntime")
    only.add_argument("--export-onnx", metavar="DIR", help="write DIR/<model>.onnx for each model and time nothing")
    p.add_argument("--onnx-dir", metavar="DIR", help="run DIR/<model>.onnx in onnxruntime (from --export-onnx) instead of exporting here")
    args = p.parse_args()
    names = args.models.split(",")
    for name in names:
        if name not in WORKLOADS:
            p.error(f"--models: unknown model '{name}' (known: {', '.join(WORKLOADS)})")
    want_torch = not args.onnxruntime_only and not args.export_onnx
    want_ort = not args.pytorch_only and not args.export_onnx
    have_files = args.onnx_dir is not None and all(os.path.isfile(os.path.join(args.onnx_dir, f"{n}.onnx")) for n in names)
    result = {"python": sys.version.split()[0], "torch": None, "onnxruntime": None, "threads": args.threads, "models": {}}
    torch = None
    if want_torch or args.export_onnx or (want_ort and not have_files):  # torch builds (and exports) the models
        try:
            import torch

            torch.set_num_threads(args.threads)
            if not torch.backends.nnpack.is_available():
                # NNPACK cannot run on this CPU; left enabled, every convolution retries it and prints a warning.
                torch.backends.nnpack.set_flags(False)
            result["torch"] = {"version": torch.__version__, "threads": torch.get_num_threads()}
        except Exception as e:  # reported, not hidden
            result["torchError"] = f"import torch failed: {e}"
            print(json.dumps(result))
            return
    ort = None
    if want_ort:
        try:
            import onnxruntime as ort

            result["onnxruntime"] = {"version": ort.__version__, "threads": args.threads}
        except Exception as e:
            result["onnxruntimeError"] = f"import onnxruntime failed: {e}"
    builders = build_models(torch.nn) if torch is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            w = WORKLOADS[name]
            entry = {}
            model = None
            if want_torch:
                log(f"  pytorch {name} …")
                model, entry["pytorch"] = bench_torch(torch, builders, name, w, args)
            elif builders is not None:
                torch.manual_seed(1)
                model = builders[name](w["classes"])
            if args.export_onnx:
                os.makedirs(args.export_onnx, exist_ok=True)
                export_onnx(torch, model, w, os.path.join(args.export_onnx, f"{name}.onnx"))
                entry["onnx"] = os.path.join(args.export_onnx, f"{name}.onnx")
            if ort is not None:
                log(f"  onnxruntime {name} …")
                try:
                    path = os.path.join(args.onnx_dir, f"{name}.onnx") if have_files else os.path.join(tmp, f"{name}.onnx")
                    if not have_files:
                        export_onnx(torch, model, w, path)
                    entry["onnxruntime"] = bench_onnxruntime(ort, path, w, args)
                except Exception as e:
                    entry["onnxruntimeError"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            result["models"][name] = entry
    print(json.dumps(result))


if __name__ == "__main__":
    main()

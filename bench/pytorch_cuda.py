"""PyTorch on the same GPU, measured as bench/cuda.mjs measures resnet-native.

torchvision ResNet at a batch size, channels_last, cudnn.benchmark on; training step =
forward + cross-entropy + backward + SGD(momentum 0.9, weight decay 1e-4) step; inference
= forward in eval mode with the logits copied to the host; batch-1 latency. Modes:
fp32 (TF32 off), tf32 (TF32 on for convolutions and matmuls), amp (autocast fp16 with a
GradScaler). Reports; asserts nothing.

    python3 bench/pytorch_cuda.py [--model resnet50] [--batch 256] [--steps 10]
                                  [--modes fp32,tf32,amp] [--json FILE]
"""
import argparse
import json
import time

import torch
import torchvision

p = argparse.ArgumentParser()
p.add_argument("--model", default="resnet50")
p.add_argument("--batch", type=int, default=256)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--size", type=int, default=224)
p.add_argument("--modes", default="fp32,tf32,amp")
p.add_argument("--json", default="")
a = p.parse_args()

torch.backends.cudnn.benchmark = True
dev = torch.device("cuda")
print(f"PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name(0)}", flush=True)
results = []
for mode in a.modes.split(","):
    tf32 = mode == "tf32"
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    model = getattr(torchvision.models, a.model)().to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=(mode == "amp"))
    x = torch.randn(a.batch, 3, a.size, a.size, device=dev).to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (a.batch,), device=dev)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=(mode == "amp")):
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    model.train()
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    loss.item()
    torch.cuda.synchronize()
    train = time.perf_counter() - t0

    model.eval()

    def infer(inp):
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16, enabled=(mode == "amp")):
            return model(inp).float().cpu()

    for _ in range(3):
        infer(x)
    t0 = time.perf_counter()
    for _ in range(a.steps):
        infer(x)
    inf = time.perf_counter() - t0
    one = x[:1].contiguous(memory_format=torch.channels_last)
    for _ in range(3):
        infer(one)
    t0 = time.perf_counter()
    for _ in range(20):
        infer(one)
    lat = (time.perf_counter() - t0) / 20
    r = dict(library="pytorch", model=a.model, mode=mode, batch=a.batch, size=a.size,
             trainImagesPerSecond=a.batch * a.steps / train, inferImagesPerSecond=a.batch * a.steps / inf,
             batch1LatencyMs=lat * 1e3)
    results.append(r)
    print(f"pytorch {a.model} {mode} b{a.batch}: train {r['trainImagesPerSecond']:.1f} img/s, "
          f"infer {r['inferImagesPerSecond']:.1f} img/s, batch-1 {r['batch1LatencyMs']:.2f} ms", flush=True)
    del model, opt, x, y
    torch.cuda.empty_cache()
if a.json:
    with open(a.json, "w") as f:
        json.dump(results, f, indent=2)

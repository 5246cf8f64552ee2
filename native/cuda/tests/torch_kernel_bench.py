# PyTorch's timings for the shapes of kernel_bench.cu on the same GPU (fp32,
# channels_last), so the two can be read side by side. Reports, never asserts.
import torch
import torch.nn.functional as F


def time_us(call, reps=20):
    for _ in range(3):
        call()
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    for _ in range(reps):
        call()
    end.record()
    torch.cuda.synchronize()
    return begin.elapsed_time(end) * 1000 / reps


for n, hw, c, name in [(256, 112, 64, 'stem 112x112x64'), (256, 56, 256, '56x56x256'),
                       (256, 28, 512, '28x28x512'), (256, 7, 2048, '7x7x2048')]:
    x = torch.randn(n, c, hw, hw, device='cuda').to(memory_format=torch.channels_last).requires_grad_()
    gamma = torch.ones(c, device='cuda', requires_grad=True)
    beta = torch.zeros(c, device='cuda', requires_grad=True)
    running_mean, running_var = torch.zeros(c, device='cuda'), torch.ones(c, device='cuda')
    dy, skip = torch.randn_like(x), torch.randn_like(x)
    bn = lambda: F.batch_norm(x, running_mean, running_var, gamma, beta, training=True)
    fwd = time_us(bn)
    both = time_us(lambda: torch.autograd.grad(bn(), (x, gamma, beta), dy))
    fused = time_us(lambda: torch.relu(bn() + skip))
    print(f"torch {name:16s} bn training forward {fwd:8.1f} us | forward+backward {both:8.1f} us "
          f"(backward ~{both - fwd:7.1f}) | bn+add+relu forward {fused:8.1f} us")
    del x, dy, skip
    torch.cuda.empty_cache()

tensors = [torch.zeros(25557032 // 161, device='cuda', requires_grad=True) for _ in range(161)]
for t in tensors:
    t.grad = torch.zeros_like(t)
sgd = torch.optim.SGD(tensors, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, foreach=True)
adamw = torch.optim.AdamW(tensors, lr=0.1, fused=True)
print(f"torch 25.6M parameters: sgd nesterov (foreach) {time_us(sgd.step):8.1f} us | "
      f"adamw (fused) {time_us(adamw.step):8.1f} us")

x = torch.randn(256, 64, 112, 112, device='cuda').to(memory_format=torch.channels_last).requires_grad_()
pool = lambda: F.max_pool2d(x, 3, 2, 1)
dy = torch.randn_like(pool())
fwd = time_us(pool)
both = time_us(lambda: torch.autograd.grad(pool(), x, dy))
print(f"torch max pool 3x3/2 [256,112,112,64]: forward {fwd:8.1f} us | forward+backward {both:8.1f} us")

#!/usr/bin/env bash
# The GPU checks, for a machine with an NVIDIA GPU and a built checkout (npm install or npm run compile,
# plus `npx cmake-js build --target resnet_cuda_check` for the kernel check):
#   1. build/Release/resnet_cuda_check: every CUDA kernel against the CPU backend;
#   2. the test files with GPU cases (GPU against the CPU engine, whole models, mixed
#      precision, captured steps) with the GPU cases on ($GPU_TESTS to choose);
#   3. bench/cuda.mjs (and bench/pytorch_cuda.py when PyTorch is installed) for ResNet-50 in
#      fp32, TF32, fp16 and bf16 (and PyTorch fp32, TF32, AMP), then (PROFILE=1) a profile.
# Results go to $1 (default build/gpu-results). cuDNN is found as the plugin finds it
# (RESNET_CUDNN_PATH, CUDNN_ROOT, LD_LIBRARY_PATH, or python3's nvidia.cudnn).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-build/gpu-results}"
mkdir -p "$out"
status=0

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"

cudnn_lib="${RESNET_CUDNN_PATH:-}"
if [ -z "$cudnn_lib" ]; then
  cudnn_lib="$(python3 -c "import importlib.util as u; s=u.find_spec('nvidia.cudnn'); print(list(s.submodule_search_locations)[0] + '/lib' if s else '')" 2>/dev/null)"
fi

if [ -x build/Release/resnet_cuda_check ]; then
  echo "== kernel check (cuDNN from ${cudnn_lib:-the system})"
  LD_LIBRARY_PATH="${cudnn_lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" timeout 120 build/Release/resnet_cuda_check 2>&1 | tee "$out/kernel_check.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

echo "== CUDA tests"
# shellcheck disable=SC2086
timeout 300 node node_modules/vitest/vitest.mjs run ${GPU_TESTS:-test/gpu/cuda.test.ts test/train/loss_scale.test.ts} 2>&1 | tee "$out/cuda_test.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

if [ "${SKIP_BENCH:-0}" != 1 ]; then
  echo "== bench: resnet-native"
  timeout 300 node bench/cuda.mjs --model resnet50 --batch "${BENCH_BATCH:-256}" --steps "${BENCH_STEPS:-10}" \
    --modes "${BENCH_MODES:-fp32,tf32,fp16,bf16}" --json "$out/bench_resnet_native.json" 2>&1 | tee "$out/bench.txt"
  if python3 -c 'import torch, torchvision' 2>/dev/null; then
    echo "== bench: PyTorch"
    timeout 300 python3 bench/pytorch_cuda.py --model resnet50 --batch "${BENCH_BATCH:-256}" --steps "${BENCH_STEPS:-10}" \
      --modes "${TORCH_MODES:-fp32,tf32,amp}" --json "$out/bench_pytorch.json" 2>&1 | tee -a "$out/bench.txt"
  else
    echo "PyTorch not installed: its side of the benchmark is skipped" | tee -a "$out/bench.txt"
  fi
  if [ "${PROFILE:-0}" = 1 ]; then
    echo "== profile: resnet-native fp16 (RESNET_CUDA_PROFILE=1: no graph capture)"
    RESNET_CUDA_PROFILE=1 timeout 120 node bench/cuda.mjs --model resnet50 --batch "${BENCH_BATCH:-256}" --steps 4 \
      --modes fp16 2>&1 | tee "$out/profile.txt"
  fi
fi
exit $status

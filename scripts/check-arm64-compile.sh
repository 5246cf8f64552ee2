#!/usr/bin/env bash
# Compiles the core and the CPU backend for arm64 (no linking), to show the kernels build
# there (the GEMM micro-kernel's GCC vector extensions become NEON fmla). Needs Debian's
# g++-aarch64-linux-gnu (apt-get install g++-aarch64-linux-gnu).
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
n=0
for f in native/core/*.cpp native/cpu/*.cpp native/cpu/reference/*.cpp; do
  aarch64-linux-gnu-g++ -std=c++20 -O2 -Wall -Wextra -Werror -c "$f" -o "$out/$(basename "$f").o"
  n=$((n + 1))
done
echo "arm64: $n files compiled without warnings; NEON fmla in the GEMM micro-kernel: $(aarch64-linux-gnu-objdump -d "$out/gemm.cpp.o" | grep -c fmla)"
rm -rf "$out"

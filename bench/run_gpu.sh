#!/bin/sh
# The compare of bench/compare.ts on the WebGPU backend, for a machine with a real
# GPU. Usage: bench/run_gpu.sh OUT.md   (writes the markdown table to OUT.md)
set -eu
out="${1:?usage: bench/run_gpu.sh OUT.md}"
cd "$(dirname "$0")/.."
export CONVLENS_BACKEND=webgpu
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
deno run -A bench/compare.ts --backend webgpu --out "$out"

#!/bin/sh
# Prepares a GPU machine run that has no network: bundles bench/gpu_side.ts into
# one file and packs this machine's deno binary (xz), into .gpu/ (git-ignored),
# with the Vulkan loader packages in .gl/. Then, on the GPU machine, from the
# repo root:
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
#   python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('.gpu/deno.xz'), open('/tmp/deno','wb'))"
#   chmod +x /tmp/deno; XDG_RUNTIME_DIR=/tmp /tmp/deno run -A .gpu/gpu_side.js --repeats 10
#   XDG_RUNTIME_DIR=/tmp /tmp/deno run -A .gpu/gpu_check.js   # WebGPU vs CPU, every plugin
# (if the adapter is not hardware, export VK_DRIVER_FILES to the NVIDIA ICD json).
set -eu
cd "$(dirname "$0")/.."
mkdir -p .gpu .gl
deno bundle --platform deno bench/gpu_side.ts -o .gpu/gpu_side.js
# mnist and imagescript's native addon stay out: the check reads no data set.
deno bundle --platform deno --external=mnist --external='*.node' -o .gpu/gpu_check.js \
  bench/gpu_check.ts
[ -f .gpu/deno.xz ] || xz -T2 -6 -c "$(command -v deno)" > .gpu/deno.xz
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
mkdir -p /tmp/amd64/partial
# shellcheck disable=SC2086
apt-get $o update -qq
# shellcheck disable=SC2086
(cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)

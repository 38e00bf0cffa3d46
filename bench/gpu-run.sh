#!/bin/bash
# The run script of the GPU benchmark bundle (npm run bundle:gpu copies it to dist-gpu/run.sh).
# Needs only Node >= 20 and a Vulkan driver on this machine (Linux x64; no network, no npm).
#   bash run.sh [--allow-software] [--quick] [--reps N] [--moe-l L]
# Prints the GPUs nvidia-smi sees and the Vulkan drivers (ICDs) found, then runs the benchmark,
# which names the WebGPU adapter it got and refuses a software one unless --allow-software.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

if ! command -v node >/dev/null; then
  echo "run.sh: node is not on PATH (Node >= 20 is needed)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "run.sh: Node $(node -v) is too old; Node >= 20 is needed" >&2
  exit 1
fi

# The bundled Vulkan loader only where the machine has none of its own.
if ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 ' && [ -f lib/libvulkan.so.1 ]; then
  echo "run.sh: no system Vulkan loader; using the bundled lib/libvulkan.so.1"
  export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# Mesa and Dawn want a runtime folder; a bare container has none.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
  export XDG_RUNTIME_DIR="$(mktemp -d)"
fi

if command -v nvidia-smi >/dev/null; then
  echo "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -4 | paste -sd ';')"
fi
icds=""
if [ -n "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ]; then
  icds="${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-}}"
  echo "Vulkan ICDs (from VK_DRIVER_FILES / VK_ICD_FILENAMES): $icds"
else
  for d in /etc/vulkan/icd.d /usr/share/vulkan/icd.d /usr/local/share/vulkan/icd.d "${XDG_DATA_HOME:-$HOME/.local/share}/vulkan/icd.d"; do
    [ -d "$d" ] && icds="$icds $(ls "$d"/*.json 2>/dev/null | tr '\n' ' ')"
  done
  icds="$(echo $icds)"
  if [ -n "$icds" ]; then
    echo "Vulkan ICDs: $icds"
  else
    echo "run.sh: no Vulkan ICD found (searched /etc/vulkan/icd.d, /usr/share/vulkan/icd.d, /usr/local/share/vulkan/icd.d): install the GPU's Vulkan driver (NVIDIA: the driver's nvidia_icd.json, e.g. libnvidia-gl-<version>), or point VK_DRIVER_FILES at its ICD file" >&2
  fi
fi

exec node gpu.mjs "$@"

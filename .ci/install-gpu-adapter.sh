#!/usr/bin/env bash
# Installs a software WebGPU adapter for the webgpu tests (test/webgpu/), as docs/gpu.md describes:
#   1. Vulkan: Mesa lavapipe >= 25 (Dawn refuses older Mesa), from the release's backports on Debian
#      bookworm (from its own suite on later releases), with the Vulkan loader;
#   2. else OpenGL ES: stock Mesa's EGL (llvmpipe), which Dawn reaches at the compatibility level.
# The backports entry is derived from the machine's own Debian sources (the suite renamed), so no
# repository host is named here. Idempotent (does nothing when loom already finds a Vulkan adapter) and
# quiet; uses `sudo -n` when not root. Exits 0 whether or not an adapter could be had: the webgpu
# tests then skip, saying why.
#
#   .ci/install-gpu-adapter.sh                 install if needed
#   .ci/install-gpu-adapter.sh --print-sources print the backports entry it would write, and stop
# APT_ETC (default /etc/apt) and OS_RELEASE (default /etc/os-release) are read from the environment.
set -uo pipefail
cd "$(dirname "$0")/.."

APT_ETC=${APT_ETC:-/etc/apt}
OS_RELEASE=${OS_RELEASE:-/etc/os-release}
ENTRY=loom-backports.sources
say() { echo "install-gpu-adapter: $*"; }

codename=$(. "$OS_RELEASE" 2>/dev/null && echo "${VERSION_CODENAME:-}")

# The deb822 stanzas (*.sources) and one-line entries (*.list, sources.list) that list the release's
# main suite, rewritten to its backports suite, in deb822 form. Security and other suites are left out.
backports_sources() {
  local files=()
  for f in "$APT_ETC"/sources.list.d/*.sources; do [ -f "$f" ] && [ "$(basename "$f")" != "$ENTRY" ] && files+=("$f"); done
  [ ${#files[@]} -gt 0 ] && awk -v suite="$codename" '
    function flush() {
      if (has && types ~ /(^| )deb( |$)/) printf "Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: %s\n%s\n", uris, suite, comps, (signed != "" ? "Signed-By: " signed "\n" : "")
      has = 0; types = ""; uris = ""; comps = ""; signed = ""
    }
    FNR == 1 { flush() }
    /^[ \t]*#/ { next }
    /^[ \t]*$/ { flush(); next }
    { key = $1; sub(/:$/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val) }
    key == "Types" { types = val }
    key == "URIs" { uris = val }
    key == "Components" { comps = val }
    key == "Signed-By" { signed = val }
    key == "Suites" { n = split(val, s, /[ \t]+/); for (i = 1; i <= n; i++) if (s[i] == suite) has = 1 }
    END { flush() }
  ' "${files[@]}"
  for f in "$APT_ETC"/sources.list "$APT_ETC"/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$codename" '
      $1 == "deb" {
        opts = ""; i = 2
        if ($2 ~ /^\[/) { opts = $2; i = 3; while ($(i - 1) !~ /\]$/) { opts = opts " " $i; i++ } }
        if ($(i + 1) != suite) next
        comps = ""; for (j = i + 2; j <= NF; j++) comps = comps (comps == "" ? "" : " ") $j
        signed = ""; if (match(opts, /signed-by=[^] ]+/)) signed = substr(opts, RSTART + 10, RLENGTH - 10)
        printf "Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: %s\n%s\n", $i, suite, comps, (signed != "" ? "Signed-By: " signed "\n" : "")
      }' "$f"
  done
}

if [ "${1:-}" = "--print-sources" ]; then
  [ -n "$codename" ] || { say "no VERSION_CODENAME in $OS_RELEASE"; exit 1; }
  backports_sources
  exit 0
fi

# Whether loom finds an adapter (ROUTE: core, gles or empty for both).
has_adapter() {
  LOOM_FROM_SOURCES=1 LOOM_WEBGPU_ROUTE="${1:-}" timeout 120 node bin/loom.js run graphs/examples/affine.graph.json \
    --inputs graphs/examples/affine.inputs.json --backend webgpu >/dev/null 2>&1
}

# The Vulkan route first: Dawn's OpenGL ES route gives only a compatibility-level adapter, on which the
# raw-WebGPU tests skip, so an existing GLES adapter is no reason to stop.
if has_adapter core; then
  say "a Vulkan WebGPU adapter is already available"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ -z "$codename" ]; then
  say "not a Debian-like system with apt: install a Vulkan driver or Mesa's EGL by hand (docs/gpu.md)"
  exit 0
fi
sudo_=""
[ "$(id -u)" -eq 0 ] || sudo_="sudo -n"
apt_() { DEBIAN_FRONTEND=noninteractive $sudo_ apt-get -q -o Dpkg::Use-Pty=0 "$@" </dev/null >/dev/null; }

# The candidate version of mesa-vulkan-drivers in the stock suites: 25 or later needs no backports.
stock_mesa=$(apt-cache policy mesa-vulkan-drivers 2>/dev/null | awk '/Candidate:/ { print $2 }')
case "$stock_mesa" in
  2[5-9].* | [3-9][0-9].*)
    say "Mesa $stock_mesa from the stock suites"
    apt_ install -y --no-install-recommends mesa-vulkan-drivers libvulkan1 || say "could not install mesa-vulkan-drivers"
    ;;
  *)
    target="$APT_ETC/sources.list.d/$ENTRY"
    if [ ! -f "$target" ]; then
      entry=$(backports_sources)
      if [ -z "$entry" ]; then
        say "no Debian $codename entry in $APT_ETC to derive $codename-backports from"
      else
        printf '%s\n' "$entry" | $sudo_ tee "$target" >/dev/null || say "could not write $target"
      fi
    fi
    if [ -f "$target" ]; then
      say "Mesa lavapipe from $codename-backports"
      # Only the backports entry is refreshed; when the stock lists are missing too, everything is.
      apt_ update -o Dir::Etc::sourcelist="sources.list.d/$ENTRY" -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 || true
      apt_ install -y --no-install-recommends -t "$codename-backports" mesa-vulkan-drivers libvulkan1 \
        || { apt_ update && apt_ install -y --no-install-recommends -t "$codename-backports" mesa-vulkan-drivers libvulkan1; } \
        || say "could not install mesa-vulkan-drivers from $codename-backports"
    fi
    ;;
esac
if has_adapter core; then
  say "WebGPU adapter: Vulkan (lavapipe)"
  exit 0
fi

say "no Vulkan adapter: trying stock Mesa's EGL for Dawn's OpenGL ES backend"
apt_ install -y --no-install-recommends libegl1 libegl-mesa0 libgl1-mesa-dri libegl-dev \
  || { apt_ update && apt_ install -y --no-install-recommends libegl1 libegl-mesa0 libgl1-mesa-dri libegl-dev; } \
  || say "could not install Mesa's EGL"
if has_adapter gles; then
  say "WebGPU adapter: OpenGL ES (llvmpipe, compatibility)"
else
  say "no WebGPU adapter could be installed: the webgpu tests will be skipped"
fi
exit 0

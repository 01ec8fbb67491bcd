#!/usr/bin/env bash
# Builds the wasm guest tools for wasm32-wasip1 with Debian's rustc-web
# toolchain (rustup here has no wasm target), installing it when missing.
# The host build keeps rustup's toolchain; guests get their own target dir
# so the two compilers never invalidate each other's artefacts.
#
# Output (each tool a directory with tool.toml + tool.wasm, the layout a
# custom tool directory has too):
#   target/guest-tools/<Name>/         built-in file tools (found by the runner
#                                      next to its binary's target dir)
#   target/guest-tools-testing/        the misbehaving test guest
#   target/custom-tools/<Name>/        examples/custom-tool, built the way a
#                                      tool author would
#
# GUESTS_PROGRESS=1 shows cargo's progress (demo.sh sets it); otherwise the
# builds are quiet, as CI wants them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

need=()
[ -x /usr/bin/rustc ] && /usr/bin/rustc --version 2>/dev/null | grep -q . || need+=(rustc-web)
[ -x /usr/bin/cargo ] || need+=(cargo-web)
[ -d /usr/lib/rustlib/src/rust/library ] || need+=(rust-web-src)
command -v wasm-ld-14 >/dev/null 2>&1 || need+=(lld-14)
[ -f /usr/lib/wasm32-wasi/libc.a ] || need+=(wasi-libc)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "build-guests: installing the wasm guest toolchain (${need[*]}) with apt-get: about 2 min on a fresh machine, once" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${need[@]}" >/dev/null
fi

quiet=--quiet
[ "${GUESTS_PROGRESS:-}" = 1 ] && quiet=
started=$SECONDS

wasm_build() { # dir, then extra cargo args
  local dir=$1; shift
  (cd "$dir" && env -u RUSTFLAGS -u CARGO_BUILD_TARGET -u RUSTC_WORKSPACE_WRAPPER -u RUSTC_WRAPPER \
    RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc CARGO_TARGET_DIR="$root/target/guests" \
    RUSTFLAGS="-C target-feature=+simd128 -C linker=wasm-ld-14 -C link-self-contained=no -L /usr/lib/wasm32-wasi -C link-arg=/usr/lib/wasm32-wasi/crt1-command.o" \
    /usr/bin/cargo build $quiet --release -Zbuild-std=std,panic_abort --target wasm32-wasip1 "$@")
}

install_tool() { # manifest, wasm, dest dir
  mkdir -p "$3"
  install -m 0644 "$1" "$3/tool.toml"
  install -m 0644 "$2" "$3/tool.wasm"
}

if [ -f target/guests/wasm32-wasip1/release/read.wasm ]; then
  echo "build-guests: guest-tools/ (wasm32-wasip1; rebuilt only if the sources changed)" >&2
else
  echo "build-guests: guest-tools/ (wasm32-wasip1, with its own standard library: about 2 min on 2 cores the first time)" >&2
fi
wasm_build guest-tools
out="$root/target/guests/wasm32-wasip1/release"
for m in guest-tools/builtin/tools/*.toml; do
  bin=$(basename "$m" .toml)
  name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$m")
  install_tool "$m" "$out/$bin.wasm" "target/guest-tools/$name"
done
install_tool guest-tools/testing/tool.toml "$out/misbehave.wasm" target/guest-tools-testing/Misbehave

echo "build-guests: examples/custom-tool" >&2
wasm_build examples/custom-tool
install_tool examples/custom-tool/tool.toml "$out/word-count.wasm" target/custom-tools/WordCount
chmod -R go-w target/guest-tools target/guest-tools-testing target/custom-tools
echo "build-guests: done in $((SECONDS - started)) s" >&2

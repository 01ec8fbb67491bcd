#!/usr/bin/env bash
# Builds the Debian package: runner_<version>_<arch>.deb with the binaries,
# the built-in guest tools, the systemd units, the service user, the
# default policies and an example config.
#
#   scripts/package-deb.sh [--profile release|dev] [--out DIR] [--no-build]
#                          [--bins DIR] [--guest-tools DIR]
#
# --profile dev packages a debug build; the default is release. --no-build
# packages binaries already built for that profile; --bins DIR those in DIR
# (no build: what the package test does with the binaries it tests, so CI
# never adds a release build); --guest-tools DIR the built-in guest tools
# there (default: the target directory's guest-tools/, else
# scripts/build-guests.sh builds them).
#
# Why dpkg-deb and not cargo-deb: the package holds more than one crate's
# binaries (the runner, its sandbox helper, the control plane), wasm
# artefacts built by another toolchain (scripts/build-guests.sh) and a
# sysusers file; cargo-deb would need all of that described in Cargo.toml
# metadata anyway, and compiling it costs minutes on a 2-core machine.
# dpkg-deb is on every Debian host already, and this script is the whole
# description of the package.
#
# Layout (the runner finds runner-sandbox and guest-tools/ beside its real
# path, which /usr/bin/runner, a symlink, resolves to):
#   /usr/lib/runner/{runner,runner-sandbox}   /usr/lib/runner/guest-tools/<Tool>/
#   /usr/bin/runner -> ../lib/runner/runner   /usr/bin/control-plane
#   /usr/lib/systemd/system/{runner,control-plane}.service
#   /usr/lib/sysusers.d/runner.conf           (the control-plane user)
#   /usr/share/runner/policies/               (the default policy, as shipped)
#   /usr/share/doc/runner/                    (README, worker.toml example, copyright)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

profile=release
out="$root/target/deb"
build=1
bins=""
guests=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=${2:?--profile needs release or dev}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --no-build) build=0; shift ;;
    --bins) bins=${2:?--bins needs a directory}; build=0; shift 2 ;;
    --guest-tools) guests=${2:?--guest-tools needs a directory}; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "package-deb: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$profile" in
  release) dir=release ;;
  dev|debug) profile=dev; dir=debug ;;
  *) echo "package-deb: --profile is release or dev, not $profile" >&2; exit 2 ;;
esac
for tool in dpkg-deb dpkg cargo python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "package-deb: $tool is missing (dpkg-deb and dpkg come with dpkg; cargo with rustup; python3 with apt-get install python3)" >&2
    exit 2
  fi
done

target=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' || echo "$root/target")
if [ "$build" = 1 ]; then
  echo "package-deb: building runner, runner-sandbox and control-plane ($profile profile; a release build from scratch takes ~10 min on 2 cores)" >&2
  cargo build --profile "$profile" --bins -p runner -p control-plane
fi
bins=${bins:-$target/$dir}
for b in runner runner-sandbox control-plane; do
  [ -x "$bins/$b" ] || { echo "package-deb: $bins/$b is missing; run without --no-build" >&2; exit 2; }
done
if [ -n "$guests" ] && [ ! -f "$guests/Read/tool.wasm" ]; then
  echo "package-deb: --guest-tools $guests holds no built-in tools (Read/tool.wasm); run scripts/build-guests.sh" >&2
  exit 2
fi
for g in "$target/guest-tools" "$root/target/guest-tools"; do
  if [ -z "$guests" ] && [ -f "$g/Read/tool.wasm" ]; then guests=$g; fi
done
if [ -z "$guests" ]; then
  echo "package-deb: building the guest tools (scripts/build-guests.sh)" >&2
  ./scripts/build-guests.sh
  guests="$root/target/guest-tools"
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' runner/Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg="$stage/runner"

install -d "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/usr/lib/runner" \
  "$pkg/usr/lib/systemd/system" "$pkg/usr/lib/sysusers.d" \
  "$pkg/usr/share/runner" "$pkg/usr/share/doc/runner/examples"
install -m 0755 "$bins/runner" "$bins/runner-sandbox" "$pkg/usr/lib/runner/"
install -m 0755 "$bins/control-plane" "$pkg/usr/bin/"
ln -s ../lib/runner/runner "$pkg/usr/bin/runner"
cp -r "$guests" "$pkg/usr/lib/runner/guest-tools"
install -m 0644 examples/runner.service examples/control-plane.service "$pkg/usr/lib/systemd/system/"
cat >"$pkg/usr/lib/sysusers.d/runner.conf" <<'EOF'
# The control plane's service user (control-plane.service). The worker runs
# as root with a bounded capability set (runner.service says why); its
# sandboxes run as sandbox.uid (default 65534, nobody).
u control-plane - "runner control plane" /var/lib/control-plane
EOF
cp -r policies "$pkg/usr/share/runner/policies"
rm -f "$pkg"/usr/share/runner/policies/*_test.rego
install -m 0644 examples/worker.toml "$pkg/usr/share/doc/runner/examples/"
cp -r examples/sessions "$pkg/usr/share/doc/runner/examples/sessions"
install -m 0644 README.md "$pkg/usr/share/doc/runner/"
cat >"$pkg/usr/share/doc/runner/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: runner
License: Apache-2.0

Files: *
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
EOF
# Nothing group- or world-writable: the runner refuses policy files that are.
chmod -R u+rwX,go+rX,go-w "$pkg/usr"

cat >"$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers /usr/lib/sysusers.d/runner.conf
  elif ! getent passwd control-plane >/dev/null; then
    adduser --system --group --home /var/lib/control-plane --no-create-home control-plane
  fi
  # Created when missing, never changed: an operator's tighter mode (or
  # owner) on an existing directory stays as it is on every upgrade.
  for d in /etc/runner:0755 /etc/control-plane:0755 /etc/runner/credentials:0700; do
    [ -d "${d%:*}" ] || install -d -m "${d#*:}" "${d%:*}"
  done
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
  fi
  cat <<'MSG'
runner installed. Neither service is enabled yet:
  worker:        write /etc/runner/worker.toml (example: /usr/share/doc/runner/examples/worker.toml),
                 run `runner doctor --config /etc/runner/worker.toml`, then `systemctl enable --now runner`
  control plane: put tls.crt and tls.key in /etc/control-plane/, then `systemctl enable --now control-plane`
MSG
fi
exit 0
EOF
cat >"$pkg/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
exit 0
EOF
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/postrm"

size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<EOF
Package: runner
Version: $version
Architecture: $arch
Maintainer: runner maintainers <runner@localhost>
Section: admin
Priority: optional
Installed-Size: $size
Depends: libc6 (>= 2.34), bash, adduser | systemd
Recommends: systemd
Homepage: https://github.com/runner/runner
Description: hardened worker for cloud AI agents
 runner claims agent sessions from a control plane and runs every tool call
 in a sandbox (namespaces, Landlock, seccomp, cgroups; WebAssembly for the
 file tools), each side effect decided by Rego policies and recorded in a
 tamper-evident audit log. Includes the reference control plane, the
 built-in guest tools and hardened systemd units for both.
EOF
(cd "$pkg" && find usr -type f -exec md5sum {} + | sort -k2 >DEBIAN/md5sums)

mkdir -p "$out"
deb="$out/runner_${version}_${arch}.deb"
# Every file root:root in the archive, whoever builds it (no fakeroot). A
# dev package is only for tests: gzip at its fastest, not xz (which takes
# two minutes over 150 MB of debug binaries on 2 cores).
compress=()
[ "$profile" = dev ] && compress=(-Zgzip -z1)
dpkg-deb "${compress[@]}" --root-owner-group --build "$pkg" "$deb" >/dev/null
echo "$deb"

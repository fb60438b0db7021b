#!/usr/bin/env bash
# cross/build.sh TARGET — build vigil for an ARM edge box natively on Debian 12, without Docker.
#
#   TARGET: aarch64-unknown-linux-gnu | armv7-unknown-linux-gnueabihf
#   Result: target/TARGET/release/vigil (stripped; tract, and on aarch64 the `ort` backend too)
#
# What it does, each step skipped when already done:
#   1. host tools: the target's cross gcc and libc, qemu-user-static (apt, as root or with sudo);
#   2. the Rust target (rustup);
#   3. a sysroot under .cache/sysroot/DEBARCH with the target's GStreamer development files and
#      plugins. Debian's arm64/armhf -dev packages cannot be installed beside the amd64 ones
#      (Multi-Arch versions must match exactly, and a mirror's security suite often lags for one
#      architecture), so this uses a private apt state for the target architecture only —
#      the machine's dpkg database is never touched — downloads the packages with their whole
#      dependency closure and unpacks them with dpkg-deb into the folder;
#   4. cargo build --release with pkg-config and the linker pointed at that sysroot.
#
# Environment: PROFILE (default release), CROSS_CHECK=1 (check only, no binary), CARGO_FEATURES
# (default "ort" for aarch64, none for armv7; see cross/README.md), VIGIL_SYSROOT_DIR (default .cache/sysroot).
# cross/env.sh TARGET prints the same environment for your own cargo commands; cross/qemu.sh
# runs the result under qemu-user with the sysroot's libraries and GStreamer plugins.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cross/target.sh
. "$here/target.sh" "${1:-}"

# shellcheck source=cross/profile.sh
. "$here/profile.sh"
# arm64 boxes may install ONNX Runtime (the vigil-onnxruntime package): its binary can load it
# (`ort`, loaded at run time, nothing linked); armhf has no ONNX Runtime and runs tract only.
# CARGO_FEATURES= (empty) builds without it.
case $target in
  aarch64-*) default_features=ort ;;
  *) default_features= ;;
esac
features=${CARGO_FEATURES-$default_features}

need_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "cross/build.sh: needs root for: $*" >&2
    exit 1
  fi
}

# 1. Host tools.
host_pkgs=("gcc-$gnu" "libc6-dev-$deb_arch-cross" qemu-user-static dpkg-dev)
missing=()
for p in "${host_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  echo "cross/build.sh: installing ${missing[*]}"
  need_root apt-get update -qq || echo "cross/build.sh: apt-get update reported a problem; trying the install anyway"
  DEBIAN_FRONTEND=noninteractive need_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# 2. Rust target.
if ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target"
fi

# 3. Sysroot.
"$here/sysroot.sh" "$target"

# 4. Build.
# shellcheck source=cross/env.sh
. "$here/env.sh" "$target"
# CROSS_CHECK=1: `cargo check` only (type-checks the whole graph for the target, with its
# GStreamer from the sysroot, without code generation or linking: `make cross-check`).
subcommand=build
[[ ${CROSS_CHECK:-} == 1 ]] && subcommand=check
args=("$subcommand" --locked -p vigil --target "$target" --profile "$profile")
[[ -n $features ]] && args+=(--features "$features")
echo "cross/build.sh: cargo ${args[*]}"
(cd "$repo" && cargo "${args[@]}")
if [[ $subcommand == build ]]; then
  bin="$repo/target/$target/$out_dir/vigil"
  echo "cross/build.sh: built $bin ($(stat -c %s "$bin") bytes)"
fi

# cross/target.sh TARGET — sourced by the other cross/ scripts: names for one target.
# Sets: target, deb_arch (Debian architecture), gnu (GNU triplet of the cross gcc and the
# multiarch library folder), qemu (qemu-user binary), repo (repository root), sysroot.
# shellcheck shell=bash disable=SC2034
target=${1:-}
case "$target" in
  aarch64-unknown-linux-gnu) deb_arch=arm64 gnu=aarch64-linux-gnu qemu=qemu-aarch64-static ;;
  armv7-unknown-linux-gnueabihf) deb_arch=armhf gnu=arm-linux-gnueabihf qemu=qemu-arm-static ;;
  *)
    echo "usage: $(basename "$0") TARGET   (aarch64-unknown-linux-gnu | armv7-unknown-linux-gnueabihf)" >&2
    exit 2
    ;;
esac
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sysroot_base=${VIGIL_SYSROOT_DIR:-$repo/.cache/sysroot}
sysroot="$sysroot_base/$deb_arch/root"
# Cargo's per-target environment variable names: upper case, '-' → '_'.
target_env=$(echo "$target" | tr 'a-z-' 'A-Z_')

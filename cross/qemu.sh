#!/usr/bin/env bash
# cross/qemu.sh TARGET BINARY [ARGS...] — run an ARM build of vigil on this x86 machine under
# qemu-user, with the sysroot's C library, GStreamer and plugins (cross/sysroot.sh).
# The plugin registry is scanned in process (no plugin-scanner child) and cached per target.
# The emulated CPU is that of a typical box (QEMU_CPU overrides it): a Cortex-A72 (Raspberry
# Pi 4) for aarch64, a Cortex-A7 for armv7. qemu's default "max" CPU emulates pointer
# authentication and more, and runs tract's inference about 20 times slower.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cross/target.sh
. "$here/target.sh" "${1:-}"
shift
bin=${1:?usage: cross/qemu.sh TARGET BINARY [ARGS...]}
shift
command -v "$qemu" >/dev/null || { echo "cross/qemu.sh: $qemu is missing (apt install qemu-user-static)" >&2; exit 1; }
[[ -d $sysroot ]] || { echo "cross/qemu.sh: no sysroot at $sysroot (run cross/sysroot.sh $target)" >&2; exit 1; }
case "$deb_arch" in
  arm64) export QEMU_CPU=${QEMU_CPU:-cortex-a72} ;;
  armhf) export QEMU_CPU=${QEMU_CPU:-cortex-a7} ;;
esac
# This machine's ONNX Runtime is x86 (and ONNX Runtime crashes under qemu-user anyway): the
# emulated vigil runs tract.
unset ORT_DYLIB_PATH
export GST_PLUGIN_SYSTEM_PATH="$sysroot/usr/lib/$gnu/gstreamer-1.0"
export GST_PLUGIN_PATH=
export GST_REGISTRY_FORK=no
export GST_REGISTRY="$sysroot_base/$deb_arch/gst-registry.bin"
exec "$qemu" -L "$sysroot" "$bin" "$@"

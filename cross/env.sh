# cross/env.sh TARGET — the environment that points cargo, the C compiler, pkg-config and the
# linker at the cross toolchain and the sysroot. Source it (`. cross/env.sh TARGET`) before your
# own `cargo build --target TARGET`; cross/build.sh does.
# shellcheck shell=bash
# shellcheck source=cross/target.sh
. "$(dirname "${BASH_SOURCE[0]}")/target.sh" "${1:-}"
libdir="$sysroot/usr/lib/$gnu"
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_SYSROOT_DIR="$sysroot"
export PKG_CONFIG_LIBDIR="$libdir/pkgconfig:$sysroot/usr/share/pkgconfig"
export "CARGO_TARGET_${target_env}_LINKER=$gnu-gcc"
export "CC_${target//-/_}=$gnu-gcc"
export "AR_${target//-/_}=$gnu-ar"
# The linker must find the libraries GStreamer's libraries depend on (glib, orc, libc of the
# sysroot's vintage) without them being on the command line.
export "CARGO_TARGET_${target_env}_RUSTFLAGS=-C link-arg=-Wl,-rpath-link,$libdir -C link-arg=-Wl,-rpath-link,$sysroot/lib/$gnu -C link-arg=-L$libdir"

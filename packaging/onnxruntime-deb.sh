#!/usr/bin/env bash
# packaging/onnxruntime-deb.sh ARCH [VERSION] — the optional package of ONNX Runtime's library
# for vigil's `ort` and `auto` backends, ARCH amd64 or arm64 (armhf has no ONNX Runtime wheel and
# stays on tract). The library comes from the official `onnxruntime` wheel on PyPI for that
# architecture (default version: scripts/fetch-onnxruntime.sh's), with its licence (MIT) and
# third-party notices:
#
#   /usr/lib/vigil/onnxruntime/libonnxruntime.so   where vigil looks when neither ort_library
#                                                  nor ORT_DYLIB_PATH names one
#   /usr/share/doc/vigil-onnxruntime/               LICENSE, ThirdPartyNotices.txt, copyright
#
# Output: target/debian/vigil-onnxruntime_<version>-1_<arch>.deb. vigil does not depend on it:
# with it installed, `backend = "auto"` (the default) runs ONNX Runtime; without it, tract.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
arch=${1:?usage: packaging/onnxruntime-deb.sh amd64|arm64 [VERSION]}
version=${2:-$(sed -n 's/^version=.{1:-\(.*\)}/\1/p' scripts/fetch-onnxruntime.sh)}
case $arch in
  amd64) machine=x86_64 ;;
  arm64) machine=aarch64 ;;
  *) echo "packaging/onnxruntime-deb.sh: ARCH must be amd64 or arm64 (armhf runs tract), not $arch" >&2; exit 2 ;;
esac
[[ -n $version ]] || { echo "packaging/onnxruntime-deb.sh: no ONNX Runtime version" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: --dest "$work/wheel" \
  --platform "manylinux_2_27_$machine" --platform "manylinux_2_28_$machine" --platform "manylinux_2_17_$machine" \
  --python-version 3.11 "onnxruntime==$version" >&2
wheel=$(ls "$work"/wheel/onnxruntime-"$version"-*.whl | head -1)

root=$work/root
lib=$root/usr/lib/vigil/onnxruntime
doc=$root/usr/share/doc/vigil-onnxruntime
mkdir -p "$lib" "$doc" "$root/DEBIAN"
python3 - "$wheel" "$lib" "$doc" <<'PY'
import sys, zipfile, pathlib
wheel, lib, doc = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    libs = [n for n in names if "/capi/libonnxruntime.so" in n]
    if not libs:
        sys.exit(f"no libonnxruntime.so in {wheel}")
    (lib / "libonnxruntime.so").write_bytes(z.read(libs[0]))
    notices = {"LICENSE": None, "ThirdPartyNotices.txt": None}
    for n in names:
        base = n.rsplit("/", 1)[-1]
        if base in notices and notices[base] is None:
            notices[base] = n
    for base, n in notices.items():
        if n is None:
            sys.exit(f"no {base} in {wheel}: the package must carry it")
        (doc / base).write_bytes(z.read(n))
PY
chmod 644 "$lib/libonnxruntime.so" "$doc"/*
cat > "$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ONNX Runtime
Source: https://pypi.org/project/onnxruntime/$version/ ($(basename "$wheel"))

Files: usr/lib/vigil/onnxruntime/libonnxruntime.so
Copyright: Microsoft Corporation
License: MIT
 See /usr/share/doc/vigil-onnxruntime/LICENSE; the notices of the software it includes are in
 /usr/share/doc/vigil-onnxruntime/ThirdPartyNotices.txt.
EOF
size=$(du -sk "$root/usr" | cut -f1)
# The oldest glibc the wheel is tagged for (manylinux_2_NN in its name).
glibc=$(basename "$wheel" | grep -o 'manylinux_2_[0-9]*' | sed 's/manylinux_2_//' | sort -n | head -1 || true)
[[ -n $glibc ]] || { echo "packaging/onnxruntime-deb.sh: no manylinux tag in $(basename "$wheel")" >&2; exit 1; }
cat > "$root/DEBIAN/control" <<EOF
Package: vigil-onnxruntime
Version: $version-1
Architecture: $arch
Maintainer: vigil developers <dev@vigil.invalid>
Installed-Size: $size
Depends: libc6 (>= 2.$glibc), libstdc++6
Enhances: vigil
Section: libs
Priority: optional
Homepage: https://onnxruntime.ai/
Description: ONNX Runtime $version for vigil's inference backends
 The shared library of ONNX Runtime (from the official onnxruntime wheel), where vigil looks
 for it: with this package installed, vigil's default backend ("auto") runs the models on
 ONNX Runtime instead of tract. vigil works without it.
EOF
mkdir -p target/debian
deb=target/debian/vigil-onnxruntime_${version}-1_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
contents=$(dpkg-deb --contents "$deb")
for path in ./usr/lib/vigil/onnxruntime/libonnxruntime.so ./usr/share/doc/vigil-onnxruntime/LICENSE \
  ./usr/share/doc/vigil-onnxruntime/ThirdPartyNotices.txt ./usr/share/doc/vigil-onnxruntime/copyright; do
  grep -q " $path\$" <<<"$contents" || { echo "packaging/onnxruntime-deb.sh: $deb lacks $path" >&2; exit 1; }
done
echo "$deb"

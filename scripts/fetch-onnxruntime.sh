#!/usr/bin/env bash
# Put ONNX Runtime's shared library (from the official `onnxruntime` wheel on PyPI) at
# .cache/onnxruntime/libonnxruntime.so for the `ort` backend and its tests, and print its path.
# Usage: scripts/fetch-onnxruntime.sh [VERSION]   (default 1.32.0)
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-1.32.0}
dir=.cache/onnxruntime
lib=$dir/libonnxruntime.so
if [[ -f $lib && -f $dir/VERSION && $(cat "$dir/VERSION") == "$version" ]]; then
  echo "$PWD/$lib"
  exit 0
fi
mkdir -p "$dir/wheel"
arch=$(uname -m)
python3 -m pip download -q --no-deps --only-binary=:all: --dest "$dir/wheel" \
  --platform "manylinux_2_27_$arch" --platform "manylinux_2_28_$arch" --platform "manylinux_2_17_$arch" \
  --python-version 3.11 "onnxruntime==$version" >&2
wheel=$(ls "$dir"/wheel/onnxruntime-"$version"-*.whl | head -1)
python3 - "$wheel" "$dir" <<'PY'
import sys, zipfile, pathlib
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if "/capi/libonnxruntime.so" in n]
    if not names:
        sys.exit(f"no libonnxruntime.so in {wheel}")
    (out / "libonnxruntime.so").write_bytes(z.read(names[0]))
PY
echo "$version" > "$dir/VERSION"
rm -rf "$dir/wheel"
echo "$PWD/$lib"

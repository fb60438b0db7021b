#!/usr/bin/env python3
"""P5 in detail (`make bench-memory`): the resident memory of `vigil run` per backend, split into
its anonymous part (heap, stacks, the models' weights and the engines' working memory) and its
file-backed part (the program, GStreamer's and ONNX Runtime's libraries: shared with any other
process mapping them), with PSS; and what one more camera and one more inference thread cost.

Runs per backend, each the plaza clip per camera at 5 fps analysis, measured at the end of a
window: 1 camera and 1 inference thread; 2 cameras on 1 thread; 2 cameras on 2 threads; 4
cameras on 1 thread. One more camera = (4 cameras − 1 camera) / 3 on one thread; one more
thread = 2 cameras on 2 threads − 2 cameras on 1.

ONNX Runtime also runs 4 cameras two ways with two cores' worth of inference: two inference
threads, each with its own session of the model (what `[inference] threads = 0` gives on two
cores), and one inference thread whose single session runs on 2 intra-op threads (`[[models]]
threads = 2`), the one copy of the weights: memory, analysed frames and CPU per frame of each.

  .venv-bench/bin/python bench/memory.py --vigil target/release/vigil --rtsp-serve target/release/rtsp-serve
"""

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import harness as h

RUNS = [(1, 1), (2, 1), (2, 2), (4, 1)]
# ONNX Runtime: (cameras, inference threads, intra-op threads of the model).
SHARING = [(4, 2, 1), (4, 1, 2)]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vigil", type=Path, default=h.ROOT / "target/release/vigil")
    p.add_argument("--rtsp-serve", type=Path, default=h.ROOT / "target/release/rtsp-serve")
    p.add_argument("--ort-lib", default=str(h.ROOT / ".cache/onnxruntime/libonnxruntime.so"))
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--warmup", type=float, default=10)
    p.add_argument("--backends", default="tract,ort")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vigil-memory-"))
    broker = h.Broker(tmp)
    results = {"machine": h.machine()}
    try:
        for backend in a.backends.split(","):
            for cams_n, threads in RUNS:
                h.log(f"memory {backend}: {cams_n} camera(s), {threads} inference thread(s)")
                cams = h.Cameras(a.rtsp_serve, tmp, cams_n)
                try:
                    r = h.agent_run(a, tmp, broker, cams, backend, a.seconds, a.warmup,
                                    inference_threads=threads)
                finally:
                    cams.proc.stop()
                results[f"{backend} {cams_n}c {threads}t"] = summary(r)
        if "ort" in a.backends.split(","):
            for cams_n, threads, intra in SHARING:
                h.log(f"memory ort: {cams_n} cameras, {threads} inference thread(s) x {intra} intra-op")
                cams = h.Cameras(a.rtsp_serve, tmp, cams_n)
                try:
                    r = h.agent_run(a, tmp, broker, cams, "ort", a.seconds, a.warmup,
                                    inference_threads=threads, model_threads=intra)
                finally:
                    cams.proc.stop()
                results[f"ort {cams_n}c {threads}t x{intra}"] = summary(r)
    finally:
        broker.proc.stop()
    report(results, a.backends.split(","))
    if a.json:
        a.json.write_text(json.dumps(results, indent=1) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)


def summary(r):
    return {
        "rss_parts_kib": r["rss_parts_kib"], "pss_kib": r["pss_kib"],
        "peak_rss_kib": r["peak_rss_kib"],
        "analysed_per_s": r["analysed"] / r["seconds"],
        "cpu_ms_per_frame": 1000 * r["cpu_s"] / max(r["analysed"], 1),
    }


def mib(kib):
    return f"{kib / 1024:.0f}"


def report(r, backends):
    print(f"\n## P5 in detail: resident memory by part ({r['machine']})\n")
    print("| Backend | Cameras | Inference threads | RSS anonymous | RSS file-backed | PSS | of which PSS file | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for backend in backends:
        for cams_n, threads in RUNS:
            v = r[f"{backend} {cams_n}c {threads}t"]
            parts, pss = v["rss_parts_kib"], v["pss_kib"]
            print(f"| {backend} | {cams_n} | {threads} | {mib(parts['RssAnon'])} MiB | {mib(parts['RssFile'])} MiB | "
                  f"{mib(pss.get('Pss', 0))} MiB | {mib(pss.get('Pss_File', 0))} MiB | {mib(v['peak_rss_kib'])} MiB |")
    print()
    for backend in backends:
        anon = lambda c, t: r[f"{backend} {c}c {t}t"]["rss_parts_kib"]["RssAnon"]  # noqa: E731
        camera = (anon(4, 1) - anon(1, 1)) / 3
        thread = anon(2, 2) - anon(2, 1)
        print(f"- {backend}: one more camera {camera / 1024:+.1f} MiB anonymous; one more inference thread "
              f"{thread / 1024:+.1f} MiB anonymous")
    if "ort" not in backends:
        return
    print("\n| ONNX Runtime, 4 cameras | RSS anonymous | analysed/s | vigil CPU per analysed frame |")
    print("|---|---|---|---|")
    for cams_n, threads, intra in SHARING:
        v = r[f"ort {cams_n}c {threads}t x{intra}"]
        how = f"{threads} sessions × 1 intra-op thread" if intra == 1 else f"1 session × {intra} intra-op threads"
        print(f"| {how} | {mib(v['rss_parts_kib']['RssAnon'])} MiB | {v['analysed_per_s']:.1f} | "
              f"{v['cpu_ms_per_frame']:.1f} ms |")


if __name__ == "__main__":
    main()

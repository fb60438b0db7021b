#!/usr/bin/env python3
"""P7, real cameras (`make bench-cameras`): how many 1080p25 cameras one box analyses at 5 fps,
analysing the main stream itself and analysing a 640×360 sub-stream (`detect_url`) with the
main stream received for evidence only, per backend; and each camera's CPU split by thread
(receive and decode, the main stream's receive, inference, the rest of the detector and rules,
the agent's I/O) at 2 cameras.

The streams are scripts/camera-streams.sh's, made from the plaza clip (1920×1080 at 4 Mbit/s
and 640×360 at 512 kbit/s, 25 fps, H.264, a key frame every 2 s), served by `rtsp-serve`
(camN = main, camN-sub = sub) on this machine, whose CPU is reported beside vigil's. The
capacity search is the harness's P6 (< 1 % dropped analysis slots, ≥ 90 % of the analysis
rate delivered).

  .venv-bench/bin/python bench/cameras.py --vigil target/release/vigil --rtsp-serve target/release/rtsp-serve
"""

import argparse
import json
import math
import shutil
import subprocess
import tempfile
from pathlib import Path

import harness as h

STREAMS = h.ROOT / "target/camera-streams"


def streams(codec="h264"):
    """The main and sub-stream files, made once."""
    main, sub = STREAMS / f"main_{codec}.mp4", STREAMS / f"sub_{codec}.mp4"
    if not (main.exists() and sub.exists()):
        subprocess.run([str(h.ROOT / "scripts/camera-streams.sh"), str(h.CLIP), str(STREAMS), codec], check=True)
    return main, sub


class TwoStreams:
    """`rtsp-serve` with n cameras, each a main stream and a sub-stream of the same scene."""

    def __init__(self, binary, tmp, n, main, sub, detect):
        self.port = h.free_port()
        mounts = []
        for i in range(n):
            mounts += [f"cam{i}={main}", f"cam{i}-sub={sub}"]
        base = f"rtsp://127.0.0.1:{self.port}"
        self.urls = [f"{base}/cam{i}" for i in range(n)]
        self.detect_urls = [f"{base}/cam{i}-sub" for i in range(n)] if detect else None
        self.proc = h.Proc([str(binary), str(h.CLIP), str(self.port), *mounts], tmp / f"rtsp-two-{n}.log")
        h.wait_port(self.port)


# Thread groups of vigil, by name. The main streams' GStreamer threads cannot be told apart
# from the analysed streams' by name, so "receive and decode" holds both streams' reception.
def group(thread):
    if thread in ("stills", "still:src"):
        return "evidence stills (main-stream decode and drawing)"
    if thread.startswith("detect"):
        return "detector (pre, inference, post, rules, evidence)"
    if thread in ("vigil-io", "vigil") or thread.startswith("tokio"):
        return "agent I/O (MQTT, outbox, health)"
    return "receive and decode (GStreamer)"


def split(run, n):
    """CPU (% of a core) per camera by thread group, and inference alone from the metrics."""
    out = {}
    for name, cpu in run["threads_cpu"].items():
        g = group(name)
        out[g] = out.get(g, 0.0) + cpu
    per = {g: 100 * v / run["seconds"] / n for g, v in out.items()}
    per["of which inference (engine)"] = 100 * run["engine_s"] / run["seconds"] / n
    per["camera server (rtsp-serve)"] = 100 * run["server_cpu_s"] / run["seconds"] / n
    return per


def stills(log, seconds):
    """Evidence stills of the main stream in a run's log: how many, how long each took (wait
    for the main stream and decoding), and how many fell back to the analysed frame."""
    times, fallbacks = [], 0
    for line in Path(log).read_text(errors="replace").splitlines():
        if "evidence from the main stream" in line and "decode_ms=" in line:
            times.append(int(line.split("decode_ms=")[1].split()[0]))
        elif "evidence from the analysed stream instead" in line:
            fallbacks += 1
    times.sort()
    at = lambda q: times[min(len(times) - 1, int(q * (len(times) - 1)))] if times else None  # noqa: E731
    return {"made": len(times), "per_min": 60 * len(times) / seconds, "fallbacks": fallbacks,
            "ms_p50": at(0.5), "ms_p90": at(0.9), "ms_max": at(1.0)}


def key_frames(a, tmp, broker, main_file, sub_file):
    """One 1080p25 camera (2 s key frame interval) analysed at 0.5 fps, where only key frames
    are decoded: vigil's receive-and-decode threads against `gst-launch-1.0 rtspsrc ! decodebin
    ! fakesink` decoding every frame of its own stream of the same camera, in the same window."""
    cams = TwoStreams(a.rtsp_serve, tmp, 2, main_file, sub_file, False)
    dec = None
    try:
        dec = h.decode_only(tmp, cams.urls[1])
        r = h.agent_run(a, tmp, broker, cams, "ort", a.seconds, a.warmup, urls=cams.urls[:1],
                        beside=[("gst-launch-1.0", dec)], fps=0.5)
    finally:
        if dec:
            dec.stop()
        cams.proc.stop()
    ingest = h.ingest_cpu(r) / r["seconds"]
    full = r["beside_cpu_s"]["gst-launch-1.0"] / r["seconds"]
    return {"vigil_ingest_cores": ingest, "decode_every_frame_cores": full,
            "ratio": ingest / full if full else None, "analysed": r["analysed"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vigil", type=Path, default=h.ROOT / "target/release/vigil")
    p.add_argument("--rtsp-serve", type=Path, default=h.ROOT / "target/release/rtsp-serve")
    p.add_argument("--ort-lib", default=str(h.ROOT / ".cache/onnxruntime/libonnxruntime.so"))
    p.add_argument("--seconds", type=float, default=30, help="measured window of each live run")
    p.add_argument("--warmup", type=float, default=10)
    p.add_argument("--backends", default="ort,tract")
    p.add_argument("--json", type=Path)
    p.add_argument("--profile-only", action="store_true", help="only the 2-camera runs (CPU by thread), no capacity search")
    p.add_argument("--key-frames-only", action="store_true", help="only the key-frames-only measure")
    a = p.parse_args()
    main_file, sub_file = streams()
    tmp = Path(tempfile.mkdtemp(prefix="vigil-cameras-"))
    broker = h.Broker(tmp)
    results = {"machine": h.machine(), "seconds": a.seconds}
    try:
        h.log("P7 key frames only: 1 camera at 0.5 fps vs decoding every frame")
        results["key_frames"] = key_frames(a, tmp, broker, main_file, sub_file)
        for backend in ([] if a.key_frames_only else a.backends.split(",")):
            for detect in (False, True):
                setup = "detect_url" if detect else "main only"
                cams_for = lambda n, d=detect: TwoStreams(a.rtsp_serve, tmp, n, main_file, sub_file, d)  # noqa: E731
                h.log(f"P7 {backend}, {setup}: 2 cameras, CPU by thread")
                cams = cams_for(2)
                try:
                    r = h.agent_run(a, tmp, broker, cams, backend, a.seconds, a.warmup,
                                    log_filter="warn,vigil::agent::stills=debug")
                finally:
                    cams.proc.stop()
                per_cam = r["cpu_s"] / r["seconds"] / 2
                server = r["server_cpu_s"] / r["seconds"] / 2
                limit = h.CORES / (per_cam + server)
                best, tried = (0, {}) if a.profile_only else h.capacity(
                    a, tmp, broker, backend, limit, a.seconds, a.warmup, cameras=cams_for, label=f"P7 {setup}")
                results[f"{backend}/{setup}"] = {
                    "stills": stills(tmp / r["log"], r["seconds"]),
                    "cpu_per_camera_pct": split(r, 2),
                    "vigil_cores_per_camera": per_cam,
                    "peak_rss_mib_2": r["peak_rss_kib"] / 1024,
                    "limit": limit,
                    "sustained": best,
                    "tried": tried,
                }
    finally:
        broker.proc.stop()
    report(results)
    if a.json:
        a.json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)


def report(r):
    k = r.get("key_frames")
    if k:
        print(f"\n## P7: key frames only (1080p25, 2 s groups, 0.5 fps analysis)\n")
        print(f"vigil receive and decode {100 * k['vigil_ingest_cores']:.1f} % of a core, decoding every frame "
              f"{100 * k['decode_every_frame_cores']:.1f} %: {k['ratio']:.2f}×; {k['analysed']:.0f} frames analysed")
    print(f"\n## P7: 1080p25 cameras at {h.FPS} fps analysis ({r['machine']})\n")
    print("| Backend | Setup | vigil cores per camera (2 cameras) | peak RSS, 2 cameras | cameras sustained | ratio |")
    print("|---|---|---|---|---|---|")
    for key, v in r.items():
        if "/" not in key or not isinstance(v, dict) or "sustained" not in v:
            continue
        backend, setup = key.split("/")
        base = r.get(f"{backend}/main only", {}).get("sustained") or math.nan
        ratio = v["sustained"] / base if base == base and base else math.nan
        print(f"| {backend} | {setup} | {v['vigil_cores_per_camera']:.3f} | {v['peak_rss_mib_2']:.0f} MiB | "
              f"{v['sustained']} | {ratio:.2f}× |")
    print("\nEvidence stills from the main stream at 2 cameras (wait for the main stream + decode):\n")
    for key, v in r.items():
        st = v.get("stills") if isinstance(v, dict) else None
        if st and st["made"]:
            print(f"- {key}: {st['made']} stills ({st['per_min']:.1f} a minute), p50 {st['ms_p50']} ms, "
                  f"p90 {st['ms_p90']} ms, max {st['ms_max']} ms; {st['fallbacks']} fell back to the analysed frame")
    print("\nCPU per camera at 2 cameras, % of a core:\n")
    for key, v in r.items():
        if "/" in key and isinstance(v, dict):
            parts = ", ".join(f"{g} {pct:.1f}" for g, pct in v["cpu_per_camera_pct"].items())
            print(f"- {key}: {parts}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The memory soak of `make soak MINUTES=60` (P5): `vigil run` on 4 cameras (the plaza clip
served 4 times, tract, 5 fps analysis) for MINUTES, sampling RSS, open fds and threads once a
minute, then the least-squares slope of each over the second half, as a share of its mean per
hour. A leak shows as a steady positive slope; |RSS slope| < 1 %/h is the target.

Usage: .venv-bench/bin/python bench/soak.py --minutes 60 [--cameras 4] [--backend tract]
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import harness as h


def slope_per_hour(samples):
    """Least-squares slope of (minute, value) pairs, in value units per hour."""
    n = len(samples)
    if n < 2:
        return 0.0
    xs = [m for m, _ in samples]
    ys = [v for _, v in samples]
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--cameras", type=int, default=4)
    p.add_argument("--backend", default="tract", choices=["tract", "ort"])
    p.add_argument("--vigil", type=Path, default=h.ROOT / "target/release/vigil")
    p.add_argument("--rtsp-serve", type=Path, default=h.ROOT / "target/release/rtsp-serve")
    p.add_argument("--ort-lib", default=str(h.ROOT / ".cache/onnxruntime/libonnxruntime.so"))
    a = p.parse_args()
    if a.minutes < 2:
        raise SystemExit("--minutes: at least 2 (the slope is taken over the second half)")
    tmp = Path(tempfile.mkdtemp(prefix="vigil-soak-"))
    broker = h.Broker(tmp)
    cams = h.Cameras(a.rtsp_serve, tmp, a.cameras)
    mport = h.free_port()
    cfg = h.agent_config(tmp, broker, mport, cams.urls, a.backend, h.SSD, a.ort_lib)
    agent = h.Proc([str(a.vigil), "run", "--config", str(cfg)], tmp / "agent.log")
    rows = []
    try:
        h.wait_port(mport, 30)
        start = time.monotonic()
        print("| minute | RSS MiB | fds | threads | analysed | dropped |")
        print("|---|---|---|---|---|---|")
        minute = 0
        while minute <= a.minutes:
            time.sleep(max(0.0, start + 60 * minute - time.monotonic()))
            if not agent.alive():
                raise SystemExit(f"vigil run exited during the soak: see {tmp / 'agent.log'}")
            m = h.scrape(mport)
            row = (minute, agent.rss_kib() / 1024, agent.fds(), agent.threads(),
                   h.total(m, "vigil_frames_analysed_total"), h.total(m, "vigil_frames_dropped_total"))
            rows.append(row)
            print(f"| {row[0]} | {row[1]:.1f} | {row[2]} | {row[3]} | {row[4]:.0f} | {row[5]:.0f} |", flush=True)
            minute += 1
        peak = agent.peak_rss_kib() / 1024
    finally:
        agent.stop()
        cams.proc.stop()
        broker.proc.stop()
    half = [r for r in rows if r[0] >= a.minutes / 2]
    print()
    for i, name in ((1, "RSS"), (2, "fds"), (3, "threads")):
        pts = [(r[0], r[i]) for r in half]
        mean = sum(v for _, v in pts) / len(pts)
        s = slope_per_hour(pts)
        share = 100 * s / mean if mean else 0.0
        print(f"{name}: slope over minutes {half[0][0]}–{half[-1][0]}: {s:+.2f}/h ({share:+.2f} % of its mean per hour)")
    print(f"peak RSS {peak:.1f} MiB; {a.cameras} cameras, {a.backend}, {a.minutes:g} min")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

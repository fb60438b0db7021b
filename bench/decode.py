#!/usr/bin/env python3
"""What decoding only what analysis needs buys (`make bench-decode`): the CPU that one thread of
libav spends decoding a 1920×1080 25 fps camera stream in full, with its non-reference
pictures dropped before the decoder (H.264 slices with nal_ref_idc 0; H.265 sub-layer
non-reference slices, which nothing decodes from when, as in x265's streams, there is one
temporal sub-layer: in a stream with several only the top sub-layer's may go), and with its key frames only (the delta units dropped before the decoder, as vigil does at analysis
rates of at most 1 fps, see agent/src/ingest/keyonly.rs), on H.264 and H.265 streams with and
without B-frames.

The streams are scripts/camera-streams.sh's, made from the plaza clip (25 s, a key frame every
2 s): h264 (no B-frames), h264b (3 B-frames, none a reference), h265 (3 B-frames), h265p (no
B-frames). (`avdec_*`'s own `skip-frame=1`, "Skip B-frames", is passed to libavcodec as
the discard level 1, below AVDISCARD_NONREF = 8, and skips nothing: measured here, every frame
came out at the same cost.) Each file is decoded as fast as it goes, `max-threads=1` as vigil's decoders, in
this process (GStreamer's Python bindings); the figure is this process's CPU time per second of
video, i.e. the share of a core the camera would cost at its real rate, the median of
`--rounds` rounds.

  .venv-bench/bin/python bench/decode.py [--json FILE]
"""

import argparse
import json
import resource
import statistics

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

import harness as h  # noqa: E402
from cameras import streams  # noqa: E402

CODECS = {"h264": "H.264, no B-frames", "h264b": "H.264, 3 B-frames",
          "h265": "H.265, 3 B-frames", "h265p": "H.265, no B-frames"}
MODES = {"full": "every frame", "nonref": "non-reference pictures dropped",
         "key": "key frames only"}


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def nal_units(data):
    """The NAL units of one access unit in `avc`/`hvc1` form (4-byte big-endian lengths)."""
    at = 0
    while at + 4 < len(data):
        n = int.from_bytes(data[at:at + 4], "big")
        yield data[at + 4:at + 4 + n]
        at += 4 + n


def is_reference(data, family):
    """Whether the picture in this access unit may be referenced by another."""
    for nal in nal_units(data):
        if not nal:
            continue
        if family == "h264":
            kind, ref_idc = nal[0] & 0x1F, (nal[0] >> 5) & 3
            if kind in (1, 5):
                return ref_idc != 0
        else:
            kind = (nal[0] >> 1) & 0x3F
            if kind < 32:
                # VCL: the even types up to 14 are sub-layer non-reference pictures (safe to
                # drop with one temporal sub-layer, which is what camera-streams.sh makes).
                return not (kind <= 14 and kind % 2 == 0)
    return True


def drop_nonref(family):
    def probe(_pad, info):
        buf = info.get_buffer()
        ok, m = buf.map(Gst.MapFlags.READ)
        if not ok:
            return Gst.PadProbeReturn.OK
        try:
            keep = is_reference(bytes(m.data), family)
        finally:
            buf.unmap(m)
        return Gst.PadProbeReturn.OK if keep else Gst.PadProbeReturn.DROP
    return probe


def decode(path, codec, mode):
    """Decode `path` once: (CPU seconds, frames out, seconds of video)."""
    family = "h265" if codec.startswith("h265") else "h264"
    form = "avc" if family == "h264" else "hvc1"
    drop = " ! identity drop-buffer-flags=delta-unit" if mode == "key" else ""
    desc = (f"filesrc location={path} ! qtdemux ! {family}parse ! video/x-{family},stream-format={form},alignment=au{drop} "
            f"! avdec_{family} name=dec max-threads=1 ! fakesink name=sink sync=false signal-handoffs=true")
    pipe = Gst.parse_launch(desc)
    if mode == "nonref":
        pad = pipe.get_by_name("dec").get_static_pad("sink")
        pad.add_probe(Gst.PadProbeType.BUFFER, drop_nonref(family))
    frames = [0]
    pipe.get_by_name("sink").connect("handoff", lambda *_: frames.__setitem__(0, frames[0] + 1))
    c0 = cpu_s()
    pipe.set_state(Gst.State.PLAYING)
    msg = pipe.get_bus().timed_pop_filtered(120 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    used = cpu_s() - c0
    ok, duration = pipe.query_duration(Gst.Format.TIME)
    pipe.set_state(Gst.State.NULL)
    if msg is None or msg.type != Gst.MessageType.EOS:
        raise SystemExit(f"decoding {path} ({mode}) failed: {msg.parse_error() if msg else 'timeout'}")
    return used, frames[0], duration / Gst.SECOND if ok else float("nan")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json")
    a = p.parse_args()
    Gst.init(None)
    results = {"machine": h.machine()}
    for codec in CODECS:
        main_file, _ = streams(codec)
        for mode in MODES:
            runs = [decode(main_file, codec, mode) for _ in range(a.rounds)]
            cpu = statistics.median(r[0] for r in runs)
            frames, video_s = runs[0][1], runs[0][2]
            results[f"{codec} {mode}"] = {"cpu_s": cpu, "frames": frames, "video_s": video_s,
                                          "core_share": cpu / video_s}
            h.log(f"{codec} {mode}: {frames} frames, {cpu:.2f} CPU-s for {video_s:.1f} s of video")
    report(results)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


def report(r):
    print(f"\n## Decoding a 1080p25 camera, one libav thread ({r['machine']})\n")
    print("| Stream | Decoded | Frames out of 625 | Share of a core | vs every frame |")
    print("|---|---|---|---|---|")
    for codec, what in CODECS.items():
        full = r[f"{codec} full"]["core_share"]
        for mode, how in MODES.items():
            v = r[f"{codec} {mode}"]
            print(f"| {what} | {how} | {v['frames']} | {100 * v['core_share']:.1f} % | "
                  f"{v['core_share'] / full:.2f}× |")


if __name__ == "__main__":
    main()

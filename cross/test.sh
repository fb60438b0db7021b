#!/usr/bin/env bash
# cross/test.sh TARGET — build vigil for TARGET (cross/build.sh, release) and prove the binary
# runs, under qemu-user with the target's own libraries and GStreamer plugins (cross/qemu.sh):
#   1. `vigil --version` equals the native build's;
#   2. `vigil check` passes on the packaged example configuration (models from this checkout);
#   3. `vigil detect` on fixture photos: detections equal the native x86 run's and the independent
#      reference's goldens within the parity tolerance (tests/src/bin/detections-match.rs);
#   4. a short pipeline with the target's plugins: `vigil detect` on an H.264 MP4 (filesrc,
#      qtdemux, h264parse, avdec_h264, videoconvert, appsink) — same frame count as native and
#      its first frame's detections equal;
# and prints the stripped binary's size. `make cross-test` runs it for aarch64 and armv7.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cross/target.sh
. "$here/target.sh" "${1:-}"
t0=$(date +%s)

"$here/build.sh" "$target"
# shellcheck source=cross/profile.sh
. "$here/profile.sh"
bin="$repo/target/$target/$out_dir/vigil"

# The native references: vigil and the detections comparer, from the test build.
native_test_build
native="$repo/target/debug/vigil"
match="$repo/target/debug/detections-match"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
arm() { "$here/qemu.sh" "$target" "$bin" "$@"; }
step() { echo "== cross-test $target: $*"; }

step "vigil --version under $qemu"
got=$(arm --version)
want=$("$native" --version)
echo "$got"
[[ $got == "$want" ]] || { echo "cross-test: version differs from native ($want)" >&2; exit 1; }

step "vigil check on packaging/vigil.toml.example"
sed "s#/usr/share/vigil/models#$repo/models#" "$repo/packaging/vigil.toml.example" > "$tmp/vigil.toml"
arm check --config "$tmp/vigil.toml"

card="$repo/models/ssd_mobilenet_v2_coco/model.toml"
threshold=0.5
for photo in grace_hopper coffee astronaut; do
  step "vigil detect tests/fixtures/$photo.png (tract)"
  s=$(date +%s%N)
  arm detect --json --card "$card" "$repo/tests/fixtures/$photo.png" > "$tmp/$photo.arm.json"
  echo "under qemu: $(( ($(date +%s%N) - s) / 1000000 )) ms"
  "$native" detect --json --card "$card" "$repo/tests/fixtures/$photo.png" > "$tmp/$photo.x86.json"
  echo -n "vs native x86: " && "$match" "$tmp/$photo.x86.json" "$tmp/$photo.arm.json" "$threshold"
  echo -n "vs reference:  " && "$match" "$repo/tests/goldens/ssd_mobilenet_v2_coco/model--$photo.json" "$tmp/$photo.arm.json" "$threshold"
done

step "pipeline: vigil detect tests/fixtures/coffee_5s.mp4 (H.264 MP4 through the target's GStreamer plugins)"
clip="$repo/tests/fixtures/coffee_5s.mp4"
arm detect --json --card "$card" --frames 3 --every 10 "$clip" > "$tmp/clip.arm.json"
"$native" detect --json --card "$card" --frames 3 --every 10 "$clip" > "$tmp/clip.x86.json"
frames() { grep -c '"frame":' "$1" || true; }
fa=$(frames "$tmp/clip.arm.json") fx=$(frames "$tmp/clip.x86.json")
echo "frames analysed: $fa under qemu, $fx native"
[[ $fa == "$fx" && $fa -gt 0 ]] || { echo "cross-test: frame counts differ" >&2; exit 1; }
echo -n "first frame vs native x86: " && "$match" "$tmp/clip.x86.json" "$tmp/clip.arm.json" "$threshold"

size=$(stat -c %s "$bin")
echo "== cross-test $target: passed in $(( $(date +%s) - t0 )) s; stripped binary $size bytes ($(awk -v b="$size" 'BEGIN { printf "%.1f MiB", b / 1048576 }'))"

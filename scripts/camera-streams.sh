#!/bin/sh
# Make one camera's two streams from a clip, as real city cameras send them: a 1920×1080 25 fps
# main stream and a 640×360 25 fps sub-stream of the same scene, each with a key frame every
# 2 s (50 frames), at 4 Mbit/s and 512 kbit/s, the footage cropped to 16:9 first (square
# pixels, as cameras send).
#
#   scripts/camera-streams.sh CLIP OUTDIR [h264|h265]
#
# The encoder's superfast preset keeps what makes a camera's stream cost its decoder (CABAC,
# the deblocking filter; ultrafast drops both and decodes several times cheaper).
# h264 (default): H.264 Main/High without B-frames, as most cameras send by default.
# h265: H.265 with 3 B-frames between P-frames in closed GOPs (cameras' "smart codec"
# modes; the middle B-frame is itself a reference, x265's B-pyramid), so that the decoder
# reorders. For the decoding bench (bench/decode.py) also h264b
# (H.264 with 3 B-frames, none of them a reference) and h265p (H.265 without B-frames).
# Writes OUTDIR/main_<codec>.mp4 and OUTDIR/sub_<codec>.mp4.
set -eu
clip=$1
out=$2
codec=${3:-h264}
case "$codec" in
  h264) enc="x264enc speed-preset=superfast key-int-max=50 bframes=0 bitrate=%s ! h264parse" ;;
  h265) enc="x265enc speed-preset=superfast key-int-max=50 option-string=bframes=3:b-adapt=0:open-gop=0 bitrate=%s ! h265parse" ;;
  h264b) enc="x264enc speed-preset=superfast key-int-max=50 bframes=3 b-adapt=false b-pyramid=false bitrate=%s ! h264parse" ;;
  h265p) enc="x265enc speed-preset=superfast key-int-max=50 option-string=bframes=0 bitrate=%s ! h265parse" ;;
  *) echo "camera-streams.sh: codec must be h264, h265, h264b or h265p, not $codec" >&2; exit 2 ;;
esac
mkdir -p "$out"
for stream in main:1920:1080:4000 sub:640:360:512; do
  IFS=: read -r name w h kbps <<EOS
$stream
EOS
  # shellcheck disable=SC2059
  encoder=$(printf "$enc" "$kbps")
  # Crop to 16:9 from the middle of whatever the clip's size is, then scale.
  gst-launch-1.0 -q filesrc location="$clip" ! decodebin ! videoconvert \
    ! aspectratiocrop aspect-ratio=16/9 ! videorate ! video/x-raw,framerate=25/1 \
    ! videoscale ! "video/x-raw,width=$w,height=$h,pixel-aspect-ratio=1/1" \
    ! $encoder ! mp4mux ! filesink location="$out/${name}_$codec.mp4"
done

#!/usr/bin/env bash
# cross/sysroot.sh TARGET — unpack the target architecture's GStreamer development files, plugins
# and their whole dependency closure into .cache/sysroot/DEBARCH/root, with a private apt state
# (.cache/sysroot/DEBARCH/apt) so the machine's own dpkg database is never touched. Needs no root.
# Re-running is cheap: nothing happens while the package list is unchanged.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cross/target.sh
. "$here/target.sh" "${1:-}"

# What vigil links against (-dev) and what it runs with (plugins: rtspsrc, qtdemux, h264parse,
# avdec_h264/h265, videoconvert, appsink, jpeg; the same set as on a box). The RTSP server
# library is no longer linked by vigil (only by vigil-demo and the tests, never cross-built
# here); it stays so that the sysroot can build those for the target too.
packages=(
  libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev
  libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
  gstreamer1.0-libav
)

base="$sysroot_base/$deb_arch"
stamp="$base/root.stamp"
# The stamp changes with the package list and with how the folder is prepared.
want="2 $deb_arch ${packages[*]}"
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "cross/sysroot.sh: $sysroot is up to date"
  exit 0
fi

state="$base/apt/state" cache="$base/apt/cache"
mkdir -p "$state/lists/partial" "$cache/archives/partial"
: > "$state/status"
apt_opts=(
  -o "Dir::State=$state" -o "Dir::State::status=$state/status" -o "Dir::Cache=$cache"
  -o "APT::Architecture=$deb_arch" -o "APT::Architectures::=$deb_arch"
  -o Debug::NoLocking=1 -o APT::Sandbox::User=root
)
echo "cross/sysroot.sh: apt index for $deb_arch"
if ! apt-get "${apt_opts[@]}" update -qq; then
  # A mirror in sync often fails one suite's index for one architecture (the security suite);
  # the main suite's packages still make a working build sysroot.
  if ! compgen -G "$state/lists/*_binary-${deb_arch}_Packages*" >/dev/null; then
    echo "cross/sysroot.sh: no $deb_arch package index could be downloaded" >&2
    exit 1
  fi
  echo "cross/sysroot.sh: warning: part of the $deb_arch index failed to download; using what came"
fi
echo "cross/sysroot.sh: downloading ${packages[*]} for $deb_arch with their dependencies"
apt-get "${apt_opts[@]}" install -y -qq --download-only --no-install-recommends "${packages[@]}" >/dev/null

rm -rf "$sysroot" "$stamp"
mkdir -p "$sysroot"
n=0
for deb in "$cache"/archives/*.deb; do
  dpkg-deb -x "$deb" "$sysroot"
  n=$((n + 1))
done
# Absolute symlinks (libz.so -> /lib/...) would point into the build machine: re-aim them
# inside the sysroot.
while IFS= read -r -d '' link; do
  dest=$(readlink "$link")
  ln -sfn "$sysroot$dest" "$link"
done < <(find "$sysroot" -type l -lname '/*' -print0)
# Linker scripts (libc.so) name their libraries by absolute path: prefix them with the sysroot.
while IFS= read -r script; do
  sed -i -E "s#([ (])(/usr)?/lib/#\\1$sysroot\\2/lib/#g" "$script"
done < <(grep -l 'GNU ld script' "$sysroot/usr/lib/$gnu"/*.so 2>/dev/null || true)
echo "$want" > "$stamp"
echo "cross/sysroot.sh: $n packages unpacked into $sysroot ($(du -sh "$sysroot" | cut -f1))"

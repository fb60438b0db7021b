#!/usr/bin/env bash
# packaging/deb.sh [TARGET] — build the Debian package of vigil with cargo-deb, then inspect it.
#
#   packaging/deb.sh                              # amd64, from a native release build
#   packaging/deb.sh aarch64-unknown-linux-gnu    # arm64, from cross/build.sh's binary
#   packaging/deb.sh armv7-unknown-linux-gnueabihf
#
# Output: target/debian/vigil_<version>-1_<arch>.deb. The package's contents are declared in
# agent/Cargo.toml ([package.metadata.deb]); its maintainer scripts are packaging/debian/.
# The man pages come from the clap definitions (`vigil manpages` of the packaged binary).
# PROFILE picks the cargo profile of the packaged binary (default release). CI packages amd64
# with PROFILE=dev, the binary its tests ran, and the ARM targets with ci-arm.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
target=${1:-}
# shellcheck source=cross/profile.sh
. cross/profile.sh
cargo_deb_version=3.8.0

if ! cargo deb --version 2>/dev/null | grep -q "$cargo_deb_version"; then
  echo "packaging/deb.sh: installing cargo-deb $cargo_deb_version"
  cargo install --locked --quiet cargo-deb --version "$cargo_deb_version"
fi

# The binary.
if [[ -z $target && $profile == dev ]]; then
  native_test_build   # CI's amd64 package: the test build's binary (cargo-deb strips it below)
elif [[ -z $target ]]; then
  cargo build --locked --profile "$profile" -p vigil --features ort
else
  cross/build.sh "$target"   # a no-op when make cross-test built it already
fi

# Man pages, written by the packaged binary itself (under qemu for an ARM one).
bin=target/${target:+$target/}$out_dir/vigil
rm -rf .cache/man
if [[ -z $target ]]; then
  "$bin" manpages .cache/man >/dev/null
else
  cross/qemu.sh "$target" "$bin" manpages .cache/man >/dev/null
fi
gzip -9n .cache/man/*.1

args=(deb -p vigil --no-build --profile "$profile" --output target/debian/)
# Optimised profiles strip at link time; a dev binary keeps its line tables until cargo-deb
# strips it (lintian refuses an unstripped binary).
if [[ $profile == dev ]]; then args+=(--strip); else args+=(--no-strip); fi
[[ -n $target ]] && args+=(--target "$target")
deb=$(cargo "${args[@]}" | tail -n 1)
[[ -f $deb ]] || { echo "packaging/deb.sh: cargo deb did not report a package ($deb)" >&2; exit 1; }

# Inspect: the control fields and every file the package must carry.
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
contents=$(dpkg-deb --contents "$deb")
missing=0
for path in ./usr/bin/vigil ./lib/systemd/system/vigil.service ./usr/lib/sysusers.d/vigil.conf \
  ./usr/lib/tmpfiles.d/vigil.conf ./etc/vigil/vigil.toml.example \
  ./usr/share/vigil/models/ssd_mobilenet_v2_coco/model.toml \
  ./usr/share/vigil/models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco_f32_prenms.onnx \
  ./usr/share/vigil/models/ssd_mobilenet_v2_coco/PROVENANCE.md \
  ./usr/share/doc/vigil/deploy.md ./usr/share/doc/vigil/copyright \
  ./usr/share/man/man1/vigil.1.gz ./usr/share/man/man1/vigil-provision.1.gz; do
  if ! grep -q " $path\$" <<<"$contents"; then
    echo "packaging/deb.sh: $deb lacks $path" >&2
    missing=1
  fi
done
((missing == 0)) || exit 1
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
[[ $conffiles == *"/etc/vigil/vigil.toml.example"* ]] || { echo "packaging/deb.sh: the example config is not a conffile" >&2; exit 1; }
if ! command -v lintian >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian >/dev/null || true
fi
if command -v lintian >/dev/null 2>&1; then
  # One run: its tags are shown (warnings included), its errors fail the build.
  lintian_status=0
  lintian_out=$(lintian --tag-display-limit 0 --fail-on error "$deb" 2>&1) || lintian_status=$?
  grep -v 'running with root privileges' <<<"$lintian_out" || true
  ((lintian_status == 0)) || { echo "packaging/deb.sh: lintian reports errors" >&2; exit 1; }
else
  echo "packaging/deb.sh: lintian not installed; skipped (apt install lintian)"
fi
echo "packaging/deb.sh: $deb ($(stat -c %s "$deb") bytes, $(grep -c . <<<"$contents") entries) OK"

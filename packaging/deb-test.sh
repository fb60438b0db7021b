#!/usr/bin/env bash
# packaging/deb-test.sh DEB — install a built vigil package on this machine (root; meant for the
# CI container) and check what an installer relies on:
#   the binary runs from /usr/bin and `vigil check` passes on the installed example config with
#   the installed model; the vigil user and its folders exist; the service is enabled but not
#   started (no configuration yet); an edited conffile survives a reinstall; purge removes the
#   program and the unit's enablement but keeps /var/lib/vigil (the outbox).
# With ORT_DEB (the vigil-onnxruntime package), also: without it the default backend (auto)
# runs tract; with it installed, ONNX Runtime from the packaged library.
set -euo pipefail
deb=${1:?usage: packaging/deb-test.sh DEB [ORT_DEB]}
ort_deb=${2:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
[[ $(id -u) -eq 0 ]] || { echo "packaging/deb-test.sh: needs root (it installs the package)" >&2; exit 1; }
fail() { echo "packaging/deb-test.sh: $*" >&2; exit 1; }
step() { echo "== deb-test: $*"; }

step "install $deb (apt resolves its dependencies)"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$(realpath "$deb")"
dpkg -s vigil | grep -E '^(Status|Version|Architecture):'

step "vigil from the package"
/usr/bin/vigil --version
/usr/bin/vigil check --config /etc/vigil/vigil.toml.example
man -w vigil-provision >/dev/null 2>&1 || [[ -f /usr/share/man/man1/vigil-provision.1.gz ]] || fail "no man page"

if [[ -n $ort_deb ]]; then
  engine() {
    env -u ORT_DYLIB_PATH /usr/bin/vigil bench --backend auto --frames 2 --json \
      --card /usr/share/vigil/models/ssd_mobilenet_v2_coco/model.toml --input "$repo/tests/fixtures/plaza_t12.png" \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["backend"])'
  }
  step "backend auto without vigil-onnxruntime: tract"
  dpkg --purge vigil-onnxruntime >/dev/null 2>&1 || true
  [[ $(engine) == tract ]] || fail "backend auto did not fall back to tract without the library"
  step "install $ort_deb: backend auto runs ONNX Runtime"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$(realpath "$ort_deb")"
  [[ -f /usr/lib/vigil/onnxruntime/libonnxruntime.so ]] || fail "no packaged libonnxruntime.so"
  [[ -f /usr/share/doc/vigil-onnxruntime/LICENSE ]] || fail "the ONNX Runtime licence is not installed"
  [[ $(engine) == ort ]] || fail "backend auto did not pick the packaged ONNX Runtime"
  dpkg --purge vigil-onnxruntime >/dev/null
fi

step "user, folders, unit"
getent passwd vigil || fail "no vigil user"
id -nG vigil
stat -c '%n %U:%G %a' /etc/vigil /var/lib/vigil
[[ $(stat -c '%U:%G %a' /var/lib/vigil) == "vigil:vigil 750" ]] || fail "/var/lib/vigil is not vigil:vigil 750"
[[ $(stat -c '%U:%G %a' /etc/vigil) == "root:vigil 750" ]] || fail "/etc/vigil is not root:vigil 750"
wants=/etc/systemd/system/multi-user.target.wants/vigil.service
[[ -L $wants ]] || fail "vigil.service is not enabled ($wants missing)"
echo "enabled: $wants -> $(readlink "$wants")"
[[ ! -e /etc/vigil/vigil.toml ]] || echo "note: /etc/vigil/vigil.toml exists already"

step "an edited conffile survives a reinstall"
echo "# edited by the installer" >> /etc/vigil/vigil.toml.example
dpkg -i "$deb" >/dev/null
grep -q "edited by the installer" /etc/vigil/vigil.toml.example || fail "the reinstall overwrote the edited example config"

step "purge"
dpkg --purge vigil >/dev/null
[[ ! -e /usr/bin/vigil ]] || fail "/usr/bin/vigil is still there after purge"
[[ ! -L $wants ]] || fail "the unit is still enabled after purge"
[[ -d /var/lib/vigil ]] || fail "purge removed /var/lib/vigil (the outbox must be kept)"
echo "purged; /var/lib/vigil kept"
echo "== deb-test: passed"

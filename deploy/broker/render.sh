#!/usr/bin/env bash
# Render the broker tier's mosquitto configuration from the templates beside this script.
#
#   render.sh district OUT_DIR DISTRICT=q1 CITY_HOST=city.example [KEY=VALUE…]
#   render.sh city     OUT_DIR DISTRICTS="q1 q2 …" [KEY=VALUE…]
#
# Writes OUT_DIR/mosquitto.conf and OUT_DIR/district.acl (or city.acl); BRIDGE_ID (the
# bridge's client id at the city) defaults to bridge-DISTRICT, and the two brokers of a
# district's failover pair need different ones (bridge-q7-a, bridge-q7-b). Every @KEY@ of the
# templates must be given or have a default below; a placeholder left over, a district id
# that is not a topic-safe name or an unknown kind stops it with a message. docs/fleet.md
# explains the files, the certificates and the password file the rendered configuration
# expects in CONF_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() { sed -n '4,5p' "$0" | sed 's/^#  */usage: /' >&2; exit 64; }
[ $# -ge 2 ] || usage
kind=$1 out=$2
shift 2
declare -A v=(
  [PORT]=8883 [BRIDGE_PORT]=8884 [CITY_BRIDGE_PORT]=8884 [BIND]=0.0.0.0
  [CONF_DIR]=/etc/mosquitto/vigil [STATE_DIR]=/var/lib/mosquitto
  [MAX_QUEUED_MESSAGES]=200000 [MAX_QUEUED_BYTES]=2147483648
)
for kv in "$@"; do
  key=${kv%%=*}
  if [[ $kv != *=* || ! $key =~ ^[A-Z_]+$ ]]; then
    echo "render.sh: $kv: expected KEY=VALUE with KEY in capitals" >&2; exit 64
  fi
  v[$key]=${kv#*=}
done
ident() { [[ $1 =~ ^[A-Za-z0-9._-]{1,64}$ ]] || { echo "render.sh: district \"$1\" must be 1-64 letters, digits, '-', '_' or '.' (as device.district)" >&2; exit 65; }; }
# Substitute every @KEY@ of template $1 (DISTRICT=$2 first, when given). The quotes make
# values literal: an `&`, `/` or `*` in a value is written as it is.
fill() {
  local text key
  text=$(<"$1")
  [ -z "${2:-}" ] || text=${text//"@DISTRICT@"/"$2"}
  for key in "${!v[@]}"; do text=${text//"@$key@"/"${v[$key]}"}; done
  if [[ $text =~ @[A-Z_]+@ ]]; then
    echo "render.sh: $(basename "$1"): ${BASH_REMATCH[0]} is not set (pass ${BASH_REMATCH[0]//@/}=…)" >&2
    exit 65
  fi
  printf '%s\n' "$text"
}
mkdir -p "$out"
# Written beside the targets and moved into place only when everything rendered: a failure
# never leaves half a configuration in a live folder.
tmp=$(mktemp -d "$out/.render.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
case $kind in
  district)
    ident "${v[DISTRICT]:-}"
    : "${v[BRIDGE_ID]:=bridge-${v[DISTRICT]}}"
    fill "$here/district.conf.in" >"$tmp/mosquitto.conf"
    fill "$here/district.acl.in" >"$tmp/district.acl"
    acl=district.acl
    ;;
  city)
    [ -n "${v[DISTRICTS]:-}" ] || { echo "render.sh: city needs DISTRICTS=\"q1 q2 …\"" >&2; exit 64; }
    [ -z "${v[DISTRICT]:-}" ] || { echo "render.sh: city takes DISTRICTS, not DISTRICT" >&2; exit 64; }
    set -f
    read -r -a districts <<<"${v[DISTRICTS]}"
    set +f
    for d in "${districts[@]}"; do ident "$d"; done
    fill "$here/city.conf.in" >"$tmp/mosquitto.conf"
    {
      fill "$here/city.acl.in"
      for d in "${districts[@]}"; do fill "$here/city-district.acl.in" "$d"; done
    } >"$tmp/city.acl"
    acl=city.acl
    ;;
  *) usage ;;
esac
mv "$tmp/mosquitto.conf" "$out/mosquitto.conf"
mv "$tmp/$acl" "$out/$acl"
echo "render.sh: wrote $out/mosquitto.conf and the $kind ACL"

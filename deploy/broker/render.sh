#!/usr/bin/env bash
# Render the broker tier's mosquitto configuration from the templates beside this script.
#
#   render.sh district OUT_DIR DISTRICT=q1 CITY_HOST=city.example [KEY=VALUE…]
#   render.sh city     OUT_DIR DISTRICTS="q1 q2 …" [KEY=VALUE…]
#
# Writes OUT_DIR/mosquitto.conf and OUT_DIR/district.acl (or city.acl). Every @KEY@ of the
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
  case $kv in
    *=*) v[${kv%%=*}]=${kv#*=} ;;
    *) echo "render.sh: $kv: expected KEY=VALUE" >&2; exit 64 ;;
  esac
done
ident() { [[ $1 =~ ^[A-Za-z0-9._-]{1,64}$ ]] || { echo "render.sh: district \"$1\" must be 1-64 letters, digits, '-', '_' or '.' (as device.district)" >&2; exit 65; }; }
# Substitute every @KEY@ of template $1 (with DISTRICT=$2 when given).
fill() {
  local text key
  text=$(<"$1")
  for key in "${!v[@]}"; do text=${text//@$key@/${v[$key]}}; done
  [ -z "${2:-}" ] || text=${text//@DISTRICT@/$2}
  if [[ $text =~ @[A-Z_]+@ ]]; then
    echo "render.sh: $(basename "$1"): ${BASH_REMATCH[0]} is not set (pass ${BASH_REMATCH[0]//@/}=…)" >&2
    exit 65
  fi
  printf '%s\n' "$text"
}
mkdir -p "$out"
case $kind in
  district)
    ident "${v[DISTRICT]:-}"
    fill "$here/district.conf.in" >"$out/mosquitto.conf"
    fill "$here/district.acl.in" >"$out/district.acl"
    ;;
  city)
    [ -n "${v[DISTRICTS]:-}" ] || { echo "render.sh: city needs DISTRICTS=\"q1 q2 …\"" >&2; exit 64; }
    fill "$here/city.conf.in" >"$out/mosquitto.conf"
    {
      fill "$here/city.acl.in"
      for d in ${v[DISTRICTS]}; do ident "$d"; fill "$here/city-district.acl.in" "$d"; done
    } >"$out/city.acl"
    ;;
  *) usage ;;
esac
echo "render.sh: wrote $out/mosquitto.conf and the $kind ACL"

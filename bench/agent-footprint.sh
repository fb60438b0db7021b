#!/usr/bin/env bash
# Measure a standalone agent on the demo's camera: time from process start to the first
# incident on the broker, analysed frames per second, CPU, and RSS (peak and current).
# Starts `vigil-demo` for the RTSP server and broker, then a second agent process (its own
# device id) against them, subscribed to with mosquitto_sub.
# Usage: bench/agent-footprint.sh [SECONDS]   (default 40; build first: cargo build -p vigil -p vigil-demo)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-40}
bin=${VIGIL:-./target/debug/vigil}
demo_bin=${VIGIL_DEMO:-./target/debug/vigil-demo}
out=$(mktemp -d)
trap 'kill $demo_pid $agent_pid $sub_pid 2>/dev/null || true; rm -rf "$out"' EXIT

"$demo_bin" --out "$out/demo" --duration $((secs + 30)) >"$out/demo.log" 2>&1 &
demo_pid=$!
for _ in $(seq 100); do [[ -s "$out/demo/vigil-demo.toml" ]] && break; sleep 0.1; done
sleep 1
port=$(sed -n 's/^port = //p' "$out/demo/vigil-demo.toml")
sed -e 's/demo-box-001/footprint-box/' "$out/demo/vigil-demo.toml" >"$out/agent.toml"

mosquitto_sub -h 127.0.0.1 -p "$port" -t 'vigil/v1/demo/footprint-box/incidents/#' -v >"$out/sub.log" 2>/dev/null &
sub_pid=$!
sleep 0.5
start=$(date +%s.%N)
RUST_LOG=warn,vigil::agent=info "$bin" run --config "$out/agent.toml" 2>"$out/agent.log" &
agent_pid=$!
first=""
for _ in $(seq $((secs * 10))); do
  if [[ -z "$first" ]] && grep -q '"state":"open"' "$out/sub.log" 2>/dev/null; then
    first=$(echo "$(date +%s.%N) - $start" | bc)
  fi
  sleep 0.1
done
ticks=$(awk '{print $14 + $15}' "/proc/$agent_pid/stat")
hz=$(getconf CLK_TCK)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$agent_pid/status")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$agent_pid/status")
threads=$(awk '/Threads/ {print $2}' "/proc/$agent_pid/status")
kill -TERM $agent_pid; wait $agent_pid 2>/dev/null || true
analysed=$(grep -c '"state"' "$out/sub.log" || true)
echo "first incident after process start: ${first:-none} s"
echo "CPU: $(echo "scale=1; 100 * $ticks / $hz / $secs" | bc) % of one core over ${secs} s"
echo "RSS: peak $((hwm / 1024)) MiB, at end $((rss / 1024)) MiB; threads: $threads"
echo "incident messages: $analysed"
grep 'camera totals' "$out/agent.log" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^.*camera totals/camera totals:/' || true

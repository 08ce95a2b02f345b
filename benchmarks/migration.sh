#!/usr/bin/env bash
# resh migrate against a stop-the-world move, for data sets of the given sizes, under a steady write load, on one
# machine (source and target gateways on loopback, each with three redis-server replicas; the service address is the
# same port, which the target binds once the source let it go).
#
#   benchmarks/migration.sh [-s "100 1024"] [-c WRITERS] [-m resh|remus]
#
# -m remus: the service is a mode remus primary (one redis-server replica, epoch 0) whose backup `resh run` starts on
# this machine (start-backup); the backup is told that the service moves and keeps its log, the target takes over as
# the primary and attaches that backup again, and the old primary retires.
# For each size (MiB): fills the service with 1000-byte incompressible values through the gateway, takes a checkpoint,
# starts `resh receive` and a write load (redis-benchmark SET, WRITERS clients, 100-byte values) and a probe client
# (SET after SET, reconnecting at once), then runs `resh migrate`. Prints the pre-copy rounds (entries, bytes, ms), the
# bytes sent against the data set, the total time, and the downtime two ways: the probe's longest gap between two
# acknowledged writes, and the service side (from the source's drain to the target's listener, from their logs).
# Then the stop-the-world move of the same service back: `resh stop` (final checkpoint), copy of the state directory,
# `resh run` on the copy; its downtime is the probe's longest gap again.
# Needs redis-server, redis-cli, redis-benchmark, python3 and the .NET SDK; about 8 GiB of memory for 1 GiB.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
sizes="100 1024" writers=2 mode=resh
while getopts "s:c:m:" o; do
  case $o in
    s) sizes=$OPTARG ;; c) writers=$OPTARG ;; m) mode=$OPTARG ;;
    *) echo "usage: $0 [-s \"MiB ...\"] [-c writers] [-m resh|remus]" >&2; exit 2 ;;
  esac
done
[[ $mode == resh || $mode == remus ]] || { echo "-m: resh or remus" >&2; exit 2; }
dotnet build src/Resh.Cli -c Release -nologo -clp:ErrorsOnly >/dev/null
dotnet build benchmarks/Resh.Benchmarks -c Release -nologo -clp:ErrorsOnly >/dev/null
resh="dotnet ${RESH_DLL:-src/Resh.Cli/bin/Release/net10.0/resh.dll}"
probe="dotnet benchmarks/Resh.Benchmarks/bin/Release/net10.0/Resh.Benchmarks.dll gap-probe"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
ms() { date +%s%3N; }
logms() { # log file, pattern -> unix ms of the first line matching (the log's HH:MM:SS.mmm of today, UTC)
  local t; t=$(grep -m1 -E "$2" "$1" | awk '{print $1}'); [[ -n "$t" ]] || { echo ""; return; }
  date -u -d "$(date -u +%F) $t" +%s%3N
}
pids=()
work=$(mktemp -d)
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 1; for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [[ -n "${RESH_KEEP_BENCH:-}" ]] && echo "kept: $work" || rm -rf "$work"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1 1200); do grep -q -E "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timed out waiting for '$2' in $1" >&2; tail -20 "$1" >&2; exit 1; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | awk '{print $1, $2}')"
for size in $sizes; do
  dir="$work/$size"; mkdir -p "$dir"
  port=$(free_port) admin=$(free_port) recv=$(free_port)
  if [[ $mode == remus ]]; then
    modeyaml="mode: remus
remus: { backup: 127.0.0.1:$(free_port), epoch: 0, failover-timeout: 1s, start-backup: true }" count=1
  else
    modeyaml="mode: resh
faults: 1" count=3
  fi
  cat > "$dir/c.yaml" <<YAML
service: { protocol: resp, listen: 127.0.0.1:$port }
admin: 127.0.0.1:$admin
$modeyaml
startup-timeout: 180s            # three replicas loading a 1 GiB dump at once on two cores take longer than the default 20s
migration: { apply-interval: 100ms }
replicas:
  count: $count
  command: redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save "" --appendonly no
YAML
  cp "$dir/c.yaml" "$dir/source.yaml"; printf 'state-dir: %s/source\n' "$dir" >> "$dir/source.yaml"
  $resh run "$dir/source.yaml" ${SOURCE_DEBUG:+--log-level Debug} > "$dir/source.log" 2>&1 & pids+=($!)
  wait_for "$dir/source.log" "resh: serving"

  keys=$((size * 1048576 / 1000))
  head -c $((keys * 750)) /dev/urandom | base64 -w 1000 | awk '{ printf "*3\r\n$3\r\nSET\r\n$%d\r\nkey:%d\r\n$1000\r\n%s\r\n", length("key:" NR), NR, $0 }' \
    | redis-cli -p "$port" --pipe > "$dir/fill.log" 2>&1
  used=$(redis-cli -p "$port" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
  $resh checkpoint --admin "127.0.0.1:$admin" > "$dir/checkpoint.log" 2>&1

  $resh receive --listen "127.0.0.1:$recv" --config "$dir/c.yaml" --state-dir "$dir/target" ${RECEIVE_ADMIN:+--admin 127.0.0.1:$(free_port)} ${TARGET_DEBUG:+--log-level Debug} > "$dir/target.log" 2>&1 & pids+=($!)
  wait_for "$dir/target.log" "for the service to migrate here"
  redis-benchmark -p "$port" -t set -n 100000000 -c "$writers" -r 100000 -d 100 -q > /dev/null 2>&1 & bench=$!; pids+=($bench)
  $probe "127.0.0.1:$port" > "$dir/probe.log" 2>&1 & probe_pid=$!; pids+=($probe_pid)
  sleep 3
  t0=$(ms)
  $resh migrate --to "127.0.0.1:$recv" --admin "127.0.0.1:$admin" > "$dir/migrate.log" 2>&1 || { cat "$dir/migrate.log"; exit 1; }
  wait_for "$dir/target.log" "migrated here"
  t1=$(ms)
  sleep 2
  kill "$bench" 2>/dev/null || true; kill -TERM "$probe_pid"; wait "$probe_pid" 2>/dev/null || true
  drain=$(logms "$dir/source.log" "draining clients")
  listening=$(logms "$dir/target.log" "Gateway listening")
  sent=$(grep -oE '[0-9]+ bytes sent' "$dir/migrate.log" | awk '{print $1}')

  echo
  echo "== mode $mode, $size MiB: $keys keys of 1000 bytes, used_memory $((used / 1048576)) MiB per replica; $writers writers (redis-benchmark SET, 100-byte values) during the move"
  echo "resh migrate:"
  grep -E "^  round" "$dir/migrate.log" || true
  grep -oE "pre-copy done .*bytes sent\)" "$dir/migrate.log" | head -1
  grep -oE "last delta [0-9]+ entries" "$dir/source.log" | head -1 || true
  awk -v s="$sent" -v d="$((keys * 1000))" 'BEGIN { printf "  bytes sent in pre-copy %d = %.2f x the data set\n", s, s/d }'
  echo "  total time (resh migrate to the target serving): $((t1 - t0)) ms"
  echo "  downtime, service side (source drains .. target listens): $((listening - drain)) ms"
  echo "  downtime, client side (probe): $(cat "$dir/probe.log")"

  # Stop-the-world: stop the target (now the service), copy its state, start it again from the copy.
  $probe "127.0.0.1:$port" > "$dir/probe2.log" 2>&1 & probe_pid=$!; pids+=($probe_pid)
  sleep 2
  t0=$(ms)
  $resh stop --admin "127.0.0.1:$admin" > /dev/null
  wait_for "$dir/target.log" "Stopped"
  t1=$(ms)
  cp -a "$dir/target" "$dir/copy"
  t2=$(ms)
  cp "$dir/c.yaml" "$dir/copy.yaml"; printf 'state-dir: %s/copy\n' "$dir" >> "$dir/copy.yaml"
  $resh run "$dir/copy.yaml" > "$dir/copy.log" 2>&1 & pids+=($!)
  wait_for "$dir/copy.log" "resh: serving"
  t3=$(ms)
  sleep 2
  kill -TERM "$probe_pid"; wait "$probe_pid" 2>/dev/null || true
  echo "stop-the-world (resh stop with its final checkpoint, copy of the state directory, resh run):"
  echo "  stop $((t1 - t0)) ms, copy $((t2 - t1)) ms ($(du -sm "$dir/target" | cut -f1) MiB), start $((t3 - t2)) ms: total $((t3 - t0)) ms"
  echo "  downtime, client side (probe): $(cat "$dir/probe2.log")"
  $resh stop --admin "127.0.0.1:$admin" > /dev/null || true
  wait_for "$dir/copy.log" "Stopped"
  [[ -n "${RESH_KEEP_BENCH:-}" ]] || rm -rf "$dir"
done

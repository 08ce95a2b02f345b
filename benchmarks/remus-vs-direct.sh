#!/usr/bin/env bash
# Mode remus (one redis-server primary, a backup process on the same machine) with epoch 0 and 25 ms, against
# one direct redis-server and mode resh (3 replicas), in the same run: throughput and p50/p99 latency with
# redis-benchmark; then the failover time of remus (failover-timeout 300 ms): from killing the primary's
# whole process tree to the first reply served by the backup on the same address. Prints ratios.
#
#   benchmarks/remus-vs-direct.sh [-n REQUESTS] [-c CLIENTS] [-r ROUNDS] [-f FAILOVERS]
#
# Needs redis-server, redis-benchmark, redis-cli (apt-get install redis-server redis-tools), python3, the .NET SDK.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
requests=200000 clients=50 rounds=3 failovers=3
while getopts "n:c:r:f:" opt; do
  case $opt in
    n) requests=$OPTARG ;;
    c) clients=$OPTARG ;;
    r) rounds=$OPTARG ;;
    f) failovers=$OPTARG ;;
    *) echo "usage: $0 [-n requests] [-c clients] [-r rounds] [-f failovers]" >&2; exit 2 ;;
  esac
done
for tool in redis-server redis-benchmark redis-cli python3 setsid; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
dotnet build src/Resh.Cli -c Release -nologo -clp:ErrorsOnly >/dev/null
resh_dll=src/Resh.Cli/bin/Release/net10.0/resh.dll

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
work=$(mktemp -d)
groups=()
cleanup() {
  # Every resh process (and its replicas) runs in a session of its own: kill the sessions.
  for g in "${groups[@]}"; do kill -9 -- "-$g" 2>/dev/null || true; done
  pkill -9 -f "$work/" 2>/dev/null || true
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT

direct_port=$(free_port)
setsid redis-server --port "$direct_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
groups+=($!)
disown $!

# config NAME MODE EXTRA: writes $work/NAME.yaml on a fresh port; sets NAME_port.
config() {
  local name=$1 mode=$2 extra=$3 port count=1
  port=$(free_port)
  [[ $mode == resh ]] && count=3
  cat > "$work/$name.yaml" <<EOF
service: { protocol: resp, listen: 127.0.0.1:$port }
mode: $mode
state-dir: $work/$name
$extra
replicas:
  count: $count
  command: redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save "" --appendonly no
EOF
  printf -v "${name}_port" %s "$port"
}
# start NAME: `resh run` in a session of its own (remus: it starts its backup in another session).
start() {
  local port_var="${1}_port"
  setsid dotnet "$resh_dll" run "$work/$1.yaml" --log-level Warning >> "$work/$1.log" 2>&1 &
  groups+=($!)
  disown $!
  for _ in $(seq 1 300); do
    redis-cli -p "${!port_var}" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  cat "$work/$1.log" >&2
  exit 1
}
remus_yaml() { # epoch failover-timeout
  echo "remus: { backup: 127.0.0.1:$(free_port), epoch: $1, failover-timeout: $2, apply-interval: 1s, start-backup: true }"
}
config resh resh ""
config remus0 remus "$(remus_yaml 0 1s)"
config remus25 remus "$(remus_yaml 25ms 1s)"
for name in resh remus0 remus25; do start "$name"; done

measure() { # port test [requests] -> "rps p50 p99"
  redis-benchmark -p "$1" -t "$2" -n "${3:-$requests}" -c "$clients" -q --csv 2>/dev/null | tr -d '"' | awk -F, 'NR>1 {print $2, $5, $7}'
}
for port in "$direct_port" "$resh_port" "$remus0_port" "$remus25_port"; do
  redis-benchmark -p "$port" -t set,get -n 50000 -c "$clients" -q >/dev/null 2>&1
done

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)"
echo "redis-benchmark -n $requests (remus 25 ms: $((requests / 10))) -c $clients, no pipelining, best of $rounds rounds; remus = 1 redis-server primary + a backup process on this machine; resh = 3 replicas"
printf "%-4s %-8s %10s %7s %9s %9s %10s\n" test system rps ratio p50_ms p99_ms added_p50
for t in set get; do
  declare -A best=() p50=() p99=()
  for _ in $(seq 1 "$rounds"); do
    for name in direct resh remus0 remus25; do
      port_var="${name}_port"
      # With 25 ms epochs every closed-loop client waits about an epoch per request: a tenth of the requests.
      n=$requests
      [[ $name == remus25 ]] && n=$((requests / 10))
      read -r rps a b < <(measure "${!port_var}" "$t" "$n")
      if awk "BEGIN{exit !($rps > ${best[$name]:-0})}"; then best[$name]=$rps p50[$name]=$a p99[$name]=$b; fi
    done
  done
  for name in direct resh remus0 remus25; do
    label=$name
    [[ $name == remus0 ]] && label="remus e=0"
    [[ $name == remus25 ]] && label="remus 25"
    awk -v t="$t" -v n="$label" -v r="${best[$name]}" -v d="${best[direct]}" -v a="${p50[$name]}" -v b="${p99[$name]}" -v da="${p50[direct]}" \
      'BEGIN { printf "%-4s %-9s %10.0f %7.2f %9.3f %9.3f %+9.0fus\n", toupper(t), n, r, r/d, a, b, (a-da)*1000 }'
  done
  unset best p50 p99
done

# Failover: a fresh remus pair per round with failover-timeout 300 ms; 1000 writes, then SIGKILL to the
# primary's whole session (gateway and replica); the time until the same address answers a read of the last
# write from the backup that took over.
echo
echo "failover (remus, failover-timeout 300ms, epoch 25ms): SIGKILL of the primary's process tree -> first reply from the backup"
printf "%-5s %12s %14s\n" round failover_ms last_write_ok
for round in $(seq 1 "$failovers"); do
  name="fo$round"
  config "$name" remus "$(remus_yaml 25ms 300ms)"
  start "$name"
  port_var="${name}_port"
  port=${!port_var}
  redis-benchmark -p "$port" -t set -n 1000 -c 4 -r 100000 -q >/dev/null 2>&1
  redis-cli -p "$port" set last "round-$round" >/dev/null
  sleep 1.5 # the backup's apply interval passes once, so the takeover replays a second's worth at most
  primary=${groups[-1]}
  start_ns=$(date +%s%N)
  kill -9 "$primary" # resh run itself; its watchdog takes its replica down with it
  answer=""
  for _ in $(seq 1 2000); do
    answer=$(redis-cli -p "$port" get last 2>/dev/null || true)
    [[ -n "$answer" && "$answer" != *"Connection refused"* ]] && break
    sleep 0.005
  done
  elapsed=$(( ($(date +%s%N) - start_ns) / 1000000 ))
  ok=no
  [[ "$answer" == "round-$round" ]] && ok=yes
  printf "%-5s %12s %14s\n" "$round" "$elapsed" "$ok"
  pkill -9 -f "$work/$name.yaml" 2>/dev/null || true
  sleep 0.5
done

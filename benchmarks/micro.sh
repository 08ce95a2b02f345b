#!/usr/bin/env bash
# BenchmarkDotNet micro-benchmarks of the request path's pure parts (benchmarks/Resh.Benchmarks): the client
# session framing a request, the replica reply framer, and the voter, each with its allocations per operation.
#
#   benchmarks/micro.sh [--job short|default] [--filter PATTERN]
#
# Results: the table printed at the end, and BenchmarkDotNet.Artifacts/results/ (markdown, CSV).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
args=("$@")
[[ " ${args[*]} " == *" --job "* ]] || args+=(--job short)
[[ " ${args[*]} " == *" --filter "* ]] || args+=(--filter '*')
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)"
dotnet run -c Release --project benchmarks/Resh.Benchmarks -- "${args[@]}" --artifacts "${TMPDIR:-/tmp}/resh-bdn"

#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (redis-server,
# redis-tools, util-linux's setpriv and nsenter, python3 for a small test service, iproute2 for
# the network namespaces of the multi-host tests, etcd-server for D-RESH, chromium for the admin page's browser test,
# the garnet-server local tool), checks formatting,
# builds, and runs unit and integration tests against real processes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v python3 >/dev/null || missing+=(python3)
command -v ip >/dev/null || missing+=(iproute2)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v chromium >/dev/null || missing+=(chromium)
if ((${#missing[@]})); then
  echo "== installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian starts a system redis (6379) and etcd (2379) after install; the tests start their own.
for unit in redis-server etcd; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$unit" 2>/dev/null; then
    as_root systemctl stop "$unit" || true
  fi
done

echo "== dotnet tool restore (garnet-server)"
dotnet tool restore >/dev/null

echo "== build"
dotnet build Resh.slnx -c Release -nologo -clp:ErrorsOnly -m:1

echo "== format check"
dotnet format Resh.slnx --verify-no-changes --no-restore

echo "== tests"
export RESH_REPO_ROOT="$PWD"
status=0
for project in tests/Resh.Tests tests/Resh.IntegrationTests; do
  dotnet test "$project" -c Release --no-build -nologo --logger "console;verbosity=normal" \
    --results-directory artifacts/test-results --logger "trx;LogFilePrefix=$(basename "$project")" \
    2>&1 | tee "artifacts-$(basename "$project").log" || status=1
done

# One closing line for the whole run, summed over the test projects (dotnet test prints
# "Failed: N" / "Skipped: N" only when N > 0).
read -r passed failed skipped < <(awk '
  /^[[:space:]]*Passed:[[:space:]]+[0-9]+/  { p += $2 }
  /^[[:space:]]*Failed:[[:space:]]+[0-9]+/  { f += $2 }
  /^[[:space:]]*Skipped:[[:space:]]+[0-9]+/ { s += $2 }
  END { print p + 0, f + 0, s + 0 }' artifacts-*.log)
rm -f artifacts-*.log
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
if [[ "$passed" -eq 0 ]]; then
  echo "no test ran" >&2
  exit 1
fi
exit $status

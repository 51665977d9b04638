#!/usr/bin/env bash
# The demo match: installs missing Debian packages, builds, creates a match
# key on first run, then plays 64 trading bots against one server for about
# 20 s, prints the bots' summary and audits the store (demo/demo.db).
# Everything stays on 127.0.0.1.
# Usage: bash sims/demo.sh [BOTS] [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source .ci/deps.sh
tw_install_deps

bots=${1:-64}
seconds=${2:-20}
case "$bots$seconds" in
*[!0-9]*) echo "usage: bash sims/demo.sh [BOTS] [SECONDS] (whole numbers)" >&2
          exit 2 ;;
esac
if [ "$bots" -lt 1 ] || [ "$bots" -gt 256 ] || [ "$seconds" -lt 1 ]; then
    echo "demo: BOTS must be 1..256 and SECONDS at least 1" >&2
    exit 2
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

run="$root/demo"
mkdir -p "$run"
cd "$run"
[ -f match.key ] || "$root/build/bin/tickwire-token" keygen --out match.key
sed -e 's|"key_file": "[^"]*"|"key_file": "match.key"|' \
    -e 's|"path": "tickwire.db"|"path": "demo.db"|' \
    "$root/configs/match.json" > match.json
rm -f report.json healthz.json metrics.txt audit.json

"$root/build/bin/tickwire-server" --config match.json 2> server.log &
server=$!
trap 'kill -TERM $server 2>/dev/null || true' EXIT

# The server writes its "listening" line once the port is bound.
for _ in $(seq 100); do
    grep -q "listening" server.log && break
    kill -0 $server 2>/dev/null || { cat server.log >&2; exit 1; }
    sleep 0.05
done

status=0
"$root/build/bin/tickwire-client" --server 127.0.0.1:7777 --key match.key \
    --bots "$bots" --duration "$seconds" --report report.json \
    --trade-rate 6 &
client=$!

# Midway through, read the server's health and metrics endpoints.
sleep "$(( seconds / 2 > 0 ? seconds / 2 : 1 ))"
http=$(sed -n 's/.*"port": \([0-9]*\).*/\1/p' match.json | sed -n 2p)
if curl -sf "http://127.0.0.1:$http/healthz" > healthz.json; then
    echo "GET /healthz: $(cat healthz.json)" >&2
    curl -sf "http://127.0.0.1:$http/metrics" > metrics.txt &&
        echo "GET /metrics: $(grep -vc '^#' metrics.txt) samples," \
             "saved to $run/metrics.txt" >&2
else
    echo "GET /healthz on port $http failed" >&2
fi
wait $client || status=$?

kill -TERM $server
wait $server || status=$?
trap - EXIT
echo
grep -E "\[stats\] summary" server.log | sed 's/^.*summary: /server: /'

# The store must hold exactly the items it granted, each with one owner.
audit=0
"$root/build/bin/tickwire-server" --config match.json --audit > audit.json ||
    audit=$?
case $audit in
0) verdict="consistent" ;;
3) verdict="INCONSISTENT" ;;
*) verdict="could not run" ;;
esac
echo "audit: $verdict ($(grep -c '"held"' audit.json) item kinds," \
     "$(sed -n 's/.*"trades_committed":[^0-9]*\([0-9]*\).*/\1/p' audit.json)" \
     "trades committed), saved to $run/audit.json"
[ "$audit" -eq 0 ] || status=$audit
echo "report: $run/report.json, server log: $run/server.log"
exit $status

#!/bin/bash
# Applies a relay profile (sims/profiles/*.json) to a veth pair between two
# fresh network namespaces with tc netem, so a server and a client can run
# over a kernel-impaired link instead of through tickwire-relay.
#
# usage: sims/netem.sh [--dry-run | --hold | --server CMD --client CMD] PROFILE
#
#   (no mode)     set up, send 20 UDP probes across the link, print how to
#                 run a server and a client, tear down
#   --dry-run     print the tc netem arguments per direction and phase;
#                 needs neither root nor netem
#   --hold        keep the namespaces until Ctrl-C, running the phases
#   --server CMD --client CMD
#                 run CMD in the server namespace in the background and the
#                 client CMD in the client namespace; tear down when the
#                 client exits. Both see TW_SERVER_ADDR.
#
# Exit status: 0 done, 1 failure, 2 bad usage or profile, 77 netem or
# network namespaces unavailable (use tickwire-relay instead).
#
# Only the two namespaces named tw-srv-PID and tw-cli-PID are created and
# touched; a trap deletes them on exit. The link uses 198.18.0.0/30, the
# RFC 2544 benchmarking range, which exists only inside those namespaces.
set -euo pipefail

PYTHON=/usr/bin/python3
SIMS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SERVER_IP=198.18.0.1
CLIENT_IP=198.18.0.2
NS_SERVER="tw-srv-$$"
NS_CLIENT="tw-cli-$$"
VETH_SERVER="tw-s$$"
VETH_CLIENT="tw-c$$"
RELAY_HINT="use tickwire-relay instead, e.g. build/bin/tickwire-relay --listen 127.0.0.1:7000 --upstream 127.0.0.1:7777 --profile"

mode=check
server_cmd=""
client_cmd=""
profile=""
created=()
children=()

usage() {
    sed -n '6,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

die() {
    echo "netem.sh: $1" >&2
    exit "${2:-1}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) mode=dry ;;
        --hold) mode=hold ;;
        --server) [ $# -ge 2 ] || die "--server needs a command" 2
                  server_cmd=$2; mode=run; shift ;;
        --client) [ $# -ge 2 ] || die "--client needs a command" 2
                  client_cmd=$2; mode=run; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option '$1' (see --help)" 2 ;;
        *) [ -z "$profile" ] || die "more than one profile given" 2
           profile=$1 ;;
    esac
    shift
done
[ -n "$profile" ] || die "missing PROFILE (see --help)" 2
if [ "$mode" = run ] && { [ -z "$server_cmd" ] || [ -z "$client_cmd" ]; }; then
    die "--server and --client go together" 2
fi

case "$profile" in
    */*|*.json) profile_path=$profile ;;
    *) [[ "$profile" =~ ^[A-Za-z0-9_-]+$ ]] ||
           die "invalid profile name '$profile'" 2
       profile_path="$SIMS_DIR/profiles/$profile.json" ;;
esac
[ -f "$profile_path" ] || die "profile not found: $profile_path" 2
[ -x "$PYTHON" ] || die "$PYTHON is needed to read the profile" 1

# Translates the profile into netem arguments: one "base DIR ARGS" line per
# direction, one "phase INDEX SECONDS DIR ARGS" line per phase and
# direction, and "repeat 0|1". Layering matches the relay: top-level keys,
# then "up"/"down"; a phase starts from the base and applies its own keys.
# NOTE: netem differs from the relay in three places. Its limit also counts
# packets waiting out their delay, so it gets queue_packets + 1000. It may
# reorder packets under jitter. Its "reorder" sends the chosen packets
# early instead of late.
netem_plan() {
    "$PYTHON" - "$1" <<'PY'
import json, sys

LINK = {"delay_ms", "jitter_ms", "loss_percent", "duplicate_percent",
        "reorder_percent", "reorder_extra_ms", "corrupt_percent",
        "rate_kbit", "queue_packets", "gilbert_elliott"}

def fail(msg):
    sys.stderr.write("netem.sh: profile %s: %s\n" % (sys.argv[1], msg))
    sys.exit(2)

def apply(params, obj, where):
    if not isinstance(obj, dict):
        fail("%s: expected an object" % where)
    for key, value in obj.items():
        if key not in LINK:
            continue
        if key == "gilbert_elliott":
            if not isinstance(value, dict):
                fail("%s.gilbert_elliott: expected an object" % where)
            ge = dict(params.get("ge", {}))
            ge.update(value)
            params["ge"] = ge
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("%s.%s: expected a number" % (where, key))
        else:
            params[key] = value

def layer(base, obj, where):
    out = {}
    for d in ("up", "down"):
        p = json.loads(json.dumps(base[d]))
        apply(p, obj, where)
        if d in obj:
            apply(p, obj[d], where + "." + d)
        out[d] = p
    return out

def args(p):
    a = []
    queue = int(p.get("queue_packets", 64))
    a += ["limit", str(queue + 1000)]
    delay = round(p.get("delay_ms", 0) * 1000)
    jitter = round(p.get("jitter_ms", 0) * 1000)
    if delay or jitter:
        a += ["delay", "%dus" % delay]
        # Without a distribution table the kernel draws jitter uniformly
        # (tabledist() in net/sched/sch_netem.c), as the relay does.
        if jitter:
            a += ["%dus" % jitter]
    u = p.get("loss_percent", 0) / 100.0
    ge = p.get("ge")
    if ge:
        # netem runs one loss model, so the uniform loss is folded into
        # the loss probability of each state.
        lg = 1 - (1 - u) * (1 - ge.get("loss_in_good", 0) / 100.0)
        lb = 1 - (1 - u) * (1 - ge.get("loss_in_bad", 0) / 100.0)
        a += ["loss", "gemodel", "%g%%" % ge.get("p_good_to_bad", 0),
              "%g%%" % ge.get("p_bad_to_good", 0), "%g%%" % (lb * 100),
              "%g%%" % (lg * 100)]
    elif u > 0:
        a += ["loss", "random", "%g%%" % (u * 100)]
    for key, word in (("duplicate_percent", "duplicate"),
                      ("corrupt_percent", "corrupt")):
        if p.get(key, 0) > 0:
            a += [word, "%g%%" % p[key]]
    if p.get("reorder_percent", 0) > 0 and delay:
        a += ["reorder", "%g%%" % p["reorder_percent"]]
    if p.get("rate_kbit", 0) > 0:
        a += ["rate", "%dkbit" % p["rate_kbit"]]
    return " ".join(a)

try:
    with open(sys.argv[1]) as f:
        prof = json.load(f)
except (OSError, ValueError) as e:
    fail(str(e))
if not isinstance(prof, dict):
    fail("expected an object")
base = layer({"up": {}, "down": {}}, prof, "profile")
for d in ("up", "down"):
    print("base %s %s" % (d, args(base[d])))
phases = prof.get("phases", [])
if not isinstance(phases, list):
    fail("phases: expected an array")
for i, ph in enumerate(phases):
    if not isinstance(ph, dict) or not isinstance(ph.get("duration_s"),
                                                  (int, float)):
        fail("phases[%d].duration_s: missing or not a number" % i)
    layered = layer(base, ph, "phases[%d]" % i)
    for d in ("up", "down"):
        print("phase %d %g %s %s" % (i, ph["duration_s"], d,
                                     args(layered[d])))
print("repeat %d" % (1 if prof.get("phases_repeat") is True else 0))
PY
}

plan=$(netem_plan "$profile_path") || exit $?

if [ "$mode" = dry ]; then
    echo "$plan"
    exit 0
fi

plan_args() { # KIND DIR [INDEX]
    if [ "$1" = base ]; then
        awk -v d="$2" '$1 == "base" && $2 == d { $1 = $2 = ""; print }' \
            <<<"$plan"
    else
        awk -v d="$2" -v i="$3" \
            '$1 == "phase" && $2 == i && $4 == d { $1=$2=$3=$4=""; print }' \
            <<<"$plan"
    fi
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${children[@]:+${children[@]}}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for ns in "${created[@]:+${created[@]}}"; do
        ip netns delete "$ns" 2>/dev/null || true
    done
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" -eq 0 ] ||
    die "network namespaces need root; $RELAY_HINT $profile" 77
if ! command -v ip >/dev/null || ! command -v tc >/dev/null; then
    die "ip and tc (iproute2) are missing; $RELAY_HINT $profile" 77
fi

ip netns add "$NS_SERVER" 2>/dev/null ||
    die "cannot create network namespaces here; $RELAY_HINT $profile" 77
created+=("$NS_SERVER")
ip netns add "$NS_CLIENT"
created+=("$NS_CLIENT")
ip link add "$VETH_SERVER" netns "$NS_SERVER" type veth \
    peer name "$VETH_CLIENT" netns "$NS_CLIENT"
ip -n "$NS_SERVER" addr add "$SERVER_IP/30" dev "$VETH_SERVER"
ip -n "$NS_CLIENT" addr add "$CLIENT_IP/30" dev "$VETH_CLIENT"
for ns in "$NS_SERVER" "$NS_CLIENT"; do
    ip -n "$ns" link set lo up
done
ip -n "$NS_SERVER" link set "$VETH_SERVER" up
ip -n "$NS_CLIENT" link set "$VETH_CLIENT" up

# "up" is client to server, so it shapes the client's egress, and "down"
# the server's.
apply_qdisc() { # VERB DIR ARGS...
    local verb=$1 dir=$2
    shift 2
    if [ "$dir" = up ]; then
        tc -n "$NS_CLIENT" qdisc "$verb" dev "$VETH_CLIENT" root netem "$@"
    else
        tc -n "$NS_SERVER" qdisc "$verb" dev "$VETH_SERVER" root netem "$@"
    fi
}

# shellcheck disable=SC2046 # the plan's arguments are meant to split
if ! err=$(apply_qdisc add up $(plan_args base up) 2>&1); then
    echo "netem.sh: this kernel has no netem qdisc ($err); $RELAY_HINT $profile" >&2
    exit 77
fi
# shellcheck disable=SC2046
apply_qdisc add down $(plan_args base down)

# Switches the qdiscs at each phase boundary, as the relay does.
run_phases() {
    local count repeat i seconds
    count=$(awk '$1 == "phase" && $4 == "up"' <<<"$plan" | wc -l)
    repeat=$(awk '$1 == "repeat" { print $2 }' <<<"$plan")
    [ "$count" -gt 0 ] || return 0
    while :; do
        for ((i = 0; i < count; i++)); do
            seconds=$(awk -v i="$i" '$1 == "phase" && $2 == i { print $3; exit }' <<<"$plan")
            # shellcheck disable=SC2046
            apply_qdisc change up $(plan_args phase up "$i")
            # shellcheck disable=SC2046
            apply_qdisc change down $(plan_args phase down "$i")
            sleep "$seconds"
        done
        [ "$repeat" = 1 ] || break
    done
    # shellcheck disable=SC2046
    apply_qdisc change up $(plan_args base up)
    # shellcheck disable=SC2046
    apply_qdisc change down $(plan_args base down)
}

print_howto() {
    cat <<EOF
netem.sh: profile $profile applied; server namespace $NS_SERVER ($SERVER_IP), client namespace $NS_CLIENT ($CLIENT_IP)
  run a server:  ip netns exec $NS_SERVER build/bin/tickwire-server ...   (listen on $SERVER_IP or 0.0.0.0)
  run a client:  ip netns exec $NS_CLIENT build/bin/tickwire-client ...   (connect to $SERVER_IP)
  or in one go:  sims/netem.sh --server 'CMD' --client 'CMD' $profile
EOF
}

case "$mode" in
check)
    # A bounded probe: 20 datagrams echoed across the link, 3 s at most.
    ip netns exec "$NS_SERVER" "$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 9999)); s.settimeout(5)
try:
    while True:
        d, a = s.recvfrom(2048); s.sendto(d, a)
except socket.timeout:
    pass' "$SERVER_IP" &
    children+=($!)
    sleep 0.2
    ip netns exec "$NS_CLIENT" "$PYTHON" -c '
import socket, sys, time
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(0.1)
rtts, sent = [], {}
for i in range(20):
    sent[i] = time.monotonic(); c.sendto(b"%d" % i, (sys.argv[1], 9999))
    time.sleep(0.02)
    try:
        while True:
            d = c.recv(64); rtts.append(time.monotonic() - sent[int(d)])
    except socket.timeout:
        pass
end = time.monotonic() + 2
while time.monotonic() < end and len(rtts) < 20:
    try:
        d = c.recv(64); rtts.append(time.monotonic() - sent[int(d)])
    except socket.timeout:
        pass
rtts.sort()
med = "%.1f ms" % (rtts[len(rtts) // 2] * 1000) if rtts else "n/a"
print("netem.sh: probe: %d of 20 echoed, median RTT %s" % (len(rtts), med))
' "$SERVER_IP"
    print_howto
    ;;
hold)
    print_howto
    echo "netem.sh: holding until Ctrl-C"
    run_phases &
    children+=($!)
    while :; do sleep 3600; done
    ;;
run)
    run_phases &
    children+=($!)
    ip netns exec "$NS_SERVER" \
        env TW_SERVER_ADDR="$SERVER_IP" sh -c "$server_cmd" &
    children+=($!)
    ip netns exec "$NS_CLIENT" env TW_SERVER_ADDR="$SERVER_IP" \
        sh -c "$client_cmd"
    ;;
esac

#!/bin/sh
# Exercises tickwire-token: exit codes, file modes, refusal to overwrite,
# and the JSON it prints. Usage: token_cli.sh PATH_TO_TICKWIRE_TOKEN
set -u
tool=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/tw_token_cli.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
failures=0

# expect STATUS DESCRIPTION -- COMMAND...: runs COMMAND, checks its status.
expect() {
    want=$1
    what=$2
    shift 3
    "$@" >"$dir/out" 2>"$dir/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: $what: exit $got, expected $want" >&2
        sed 's/^/  stderr: /' "$dir/err" >&2
        failures=$((failures + 1))
    fi
}

check() {
    if ! eval "$2"; then
        echo "FAIL: $1" >&2
        failures=$((failures + 1))
    fi
}

expect 0 "--help" -- "$tool" --help
check "help names both commands" \
    'grep -q keygen "$dir/out" && grep -q issue "$dir/out"'
expect 2 "no command" -- "$tool"
expect 2 "unknown command" -- "$tool" frobnicate
expect 2 "keygen without --out" -- "$tool" keygen
expect 2 "keygen with a stray argument" -- "$tool" keygen --out "$dir/x" extra

expect 0 "keygen" -- "$tool" keygen --out "$dir/match.key"
check "key file mode is 600" '[ "$(stat -c %a "$dir/match.key")" = 600 ]'
check "key file is 32 bytes" '[ "$(stat -c %s "$dir/match.key")" = 32 ]'
cp "$dir/match.key" "$dir/copy.key"
expect 1 "keygen over an existing file" -- \
    "$tool" keygen --out "$dir/match.key"
check "refusal is explained" 'grep -q "already exists" "$dir/err"'
check "existing key unchanged" 'cmp -s "$dir/match.key" "$dir/copy.key"'

key="$dir/match.key"
expect 2 "issue without --ttl" -- \
    "$tool" issue --key "$key" --player 1 --name Ann --match 7
expect 2 "negative player id" -- \
    "$tool" issue --key "$key" --player -1 --name Ann --match 7 --ttl 60
expect 2 "player id above 2^53 - 1" -- \
    "$tool" issue --key "$key" --player 9007199254740992 --name Ann \
    --match 7 --ttl 60
expect 2 "match id above 2^32 - 1" -- \
    "$tool" issue --key "$key" --player 1 --name Ann --match 4294967296 \
    --ttl 60
expect 2 "zero ttl" -- \
    "$tool" issue --key "$key" --player 1 --name Ann --match 7 --ttl 0
expect 2 "name of 32 characters" -- \
    "$tool" issue --key "$key" --player 1 --match 7 --ttl 60 \
    --name abcdefghijklmnopqrstuvwxyz012345
expect 1 "missing key file" -- \
    "$tool" issue --key "$dir/none.key" --player 1 --name Ann --match 7 \
    --ttl 60

expect 0 "issue to standard output" -- \
    "$tool" issue --key "$key" --player 9007199254740991 --name "Ann B" \
    --match 7 --ttl 60
check "token fields" '/usr/bin/python3 - "$dir/out" "$key" <<"PY"
import base64, json, sys
t = json.load(open(sys.argv[1]))
key = open(sys.argv[2], "rb").read()
assert t["format"] == "tickwire-token-1", t["format"]
assert t["protocol"] == 1
assert t["match_id"] == 7
assert t["player_id"] == 9007199254740991
assert t["name"] == "Ann B"
assert t["expires_at"] - t["created_at"] == 60
assert len(base64.b64decode(t["nonce"], validate=True)) == 24
assert len(base64.b64decode(t["sealed"], validate=True)) == 140
for k in ("client_to_server_key", "server_to_client_key"):
    assert len(base64.b64decode(t[k], validate=True)) == 32
text = open(sys.argv[1]).read()
assert base64.b64encode(key).decode() not in text, "match key leaked"
PY'
check "nothing on stderr" '[ ! -s "$dir/err" ]'

expect 0 "issue to a file" -- \
    "$tool" issue --key "$key" --player 2 --name Bo --match 7 --ttl 60 \
    --out "$dir/token.json"
check "token file mode is 600" '[ "$(stat -c %a "$dir/token.json")" = 600 ]'
check "token file is JSON" \
    '/usr/bin/python3 -c "import json,sys; json.load(open(sys.argv[1]))" \
    "$dir/token.json"'
check "nothing on standard output" '[ ! -s "$dir/out" ]'
expect 1 "issue over an existing file" -- \
    "$tool" issue --key "$key" --player 2 --name Bo --match 7 --ttl 60 \
    --out "$dir/token.json"

expect 0 "issue with --now" -- \
    "$tool" issue --key "$key" --player 3 --name Cy --match 7 --ttl 60 \
    --now 1000000000
check "--now sets created_at and expires_at" '/usr/bin/python3 - "$dir/out" <<"PY"
import json, sys
t = json.load(open(sys.argv[1]))
assert t["created_at"] == 1000000000, t["created_at"]
assert t["expires_at"] == 1000000060, t["expires_at"]
PY'
expect 2 "negative --now" -- \
    "$tool" issue --key "$key" --player 3 --name Cy --match 7 --ttl 60 \
    --now -5
expect 1 "--now plus --ttl above 2^53 - 1" -- \
    "$tool" issue --key "$key" --player 3 --name Cy --match 7 --ttl 60 \
    --now 9007199254740991

chmod 660 "$key"
expect 1 "group-writable key file" -- \
    "$tool" issue --key "$key" --player 1 --name Ann --match 7 --ttl 60

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "token_cli: all checks passed"

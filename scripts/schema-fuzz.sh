#!/usr/bin/env bash
# Schema fuzzing: schemathesis generates requests from the served OpenAPI document and checks that no answer
# is a server error (5xx) and that every answer fits the schema the document declares for it. Run once per
# demo role (each with its own token, on a fresh server with a fresh data dir, so one role's random
# freezes and revocations cannot spoil another's run). Not part of scripts/test.sh: it takes minutes.
#
# Usage: scripts/schema-fuzz.sh [MAX_EXAMPLES_PER_OPERATION] [ROLE...]
#   defaults: 20 examples; admin reviewer1 supervisor1 officer1 ent1-legal ent1-operator
# Env:    SCHEMA_FUZZ_CHECKS  schemathesis checks (default not_a_server_error,response_schema_conformance)
#         SCHEMA_FUZZ_SEED    generation seed (default 1), so a run can be repeated
#         CARGO_TARGET_DIR    where the release build, the venv and the reports go (default target)
# Exit:   0 when every role's run passed, 1 otherwise. Reports: $CARGO_TARGET_DIR/schema-fuzz/<role>/.
set -euo pipefail
cd "$(dirname "$0")/.."

examples="${1:-20}"
shift || true
roles=("$@")
if [ ${#roles[@]} -eq 0 ]; then
    roles=(admin reviewer1 supervisor1 officer1 ent1-legal ent1-operator)
fi
checks="${SCHEMA_FUZZ_CHECKS:-not_a_server_error,response_schema_conformance}"
seed="${SCHEMA_FUZZ_SEED:-1}"
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target"
target="$(cd "$target" && pwd)"
venv="$target/schemathesis-venv"
reports="$target/schema-fuzz"
root="$PWD"
schemathesis_version="4.32.5"

if [ ! -x "$venv/bin/st" ]; then
    echo "installing schemathesis $schemathesis_version into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "schemathesis==$schemathesis_version"
fi
cargo build --release --locked --bin fieldcheck
fieldcheck="$target/release/fieldcheck"

server_pid=""
data_dir=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
    if [ -n "$data_dir" ]; then
        rm -rf "$data_dir"
        data_dir=""
    fi
}
trap stop_server EXIT

# Starts a fresh demo server on a free loopback port; sets server_pid and base.
start_server() {
    data_dir="$(mktemp -d)"
    mkfifo "$data_dir/stdout"
    # A short request timeout keeps generated long-polls (`wait=60`) from stretching the run: the server
    # ends them, with an empty page, just before it.
    FIELDCHECK__DEMO__FIXTURES_DIR="$PWD/fixtures" FIELDCHECK__SERVER__REQUEST_TIMEOUT_SECS=5 \
        "$fieldcheck" serve --demo --listen 127.0.0.1:0 --data-dir "$data_dir/data" \
        >"$data_dir/stdout" 2>"$data_dir/server.log" &
    server_pid=$!
    # The server prints this line once its socket is bound; port 0 means no port can be taken already.
    local line
    while read -r line; do
        case "$line" in
        "fieldcheck listening on "*)
            base="${line#fieldcheck listening on }"
            break
            ;;
        esac
    done <"$data_dir/stdout"
    if [ -z "${base:-}" ]; then
        echo "the server did not start; its log:" >&2
        cat "$data_dir/server.log" >&2
        exit 1
    fi
    # Keep draining its stdout so the server never blocks on a full pipe.
    cat "$data_dir/stdout" >/dev/null &
}

login() {
    local user="$1" body
    body="{\"username\": \"$user\", \"password\": \"demo-password\"}"
    # The officer logs in on their demo handheld, as the sync endpoints require.
    if [ "$user" = officer1 ]; then
        body="{\"username\": \"$user\", \"password\": \"demo-password\", \"device_id\": \"demo-handheld-officer1\"}"
    fi
    curl -sf -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' -d "$body" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

started=$(date +%s)
failed=()
for role in "${roles[@]}"; do
    base=""
    start_server
    token="$(login "$role")"
    echo "== $role: $examples examples per operation, checks $checks, against $base"
    mkdir -p "$reports/$role"
    # schemathesis keeps its caches (.hypothesis/, .schemathesis/) in the working directory: the report's,
    # not the repository. Logging out would end the token the rest of the run uses.
    if ! (cd "$reports/$role" && SCHEMATHESIS_HOOKS="$root/scripts/schema-fuzz-hooks.py" "$venv/bin/st" run "$base/api/v1/openapi.json" \
        --header "Authorization: Bearer $token" \
        --checks "$checks" \
        --max-examples "$examples" \
        --seed "$seed" \
        --workers 1 \
        --request-timeout 30 \
        --exclude-path /api/v1/auth/logout \
        --no-color \
        --report junit,ndjson --report-dir . \
        2>&1 | tee output.txt); then
        failed+=("$role")
    fi
    stop_server
done
elapsed=$(($(date +%s) - started))

echo
echo "schema fuzzing took ${elapsed}s for ${#roles[@]} roles; reports in $reports/"
for role in "${roles[@]}"; do
    out="$reports/$role/output.txt"
    tested="$(grep -m1 -E '^ +Tested:' "$out" | tr -s ' ')"
    cases="$(grep -A1 '^Test cases:' "$out" | tail -n 1 | tr -s ' ')"
    verdict="$(grep -E '^=+ .* in [0-9.]+s =+$' "$out" | tail -n 1 | tr -d '=' | tr -s ' ')"
    printf '%-14s operations%s;%s;%s\n' "$role" "${tested#* Tested:}" "$cases" "$verdict"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "failures for: ${failed[*]}" >&2
    exit 1
fi

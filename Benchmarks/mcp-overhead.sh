#!/usr/bin/env bash
# Overhead of a tools/call through Warden against calling the same tool directly: the SDK's stdio client
# calls mcp-demo.add on the server itself and through `warden mcp` (admission, durable task record,
# sandboxed mcp-kind plugin server), alternating; prints both medians and their ratio.
# Env: WARDEN (default .build/release/warden), VENV (default .build/venv), N calls each (default 200),
# STATE_PARENT: where the state directory goes (default /tmp; /dev/shm takes fsync latency out of the picture:
# each call through Warden is five durable store writes).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
: "${WARDEN:=$ROOT/.build/release/warden}"
: "${VENV:=$ROOT/.build/venv}"
[ -x "$WARDEN" ] || { echo "no warden binary at $WARDEN (make build)" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || { echo "no venv at $VENV (make venv)" >&2; exit 1; }
tmp=$(mktemp -d "${STATE_PARENT:-/tmp}/warden-mcp-bench-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export WARDEN_HOME="$tmp/state" WARDEN_PROFILES="$ROOT/sandbox-profiles" WARDEN
"$WARDEN" init >/dev/null
"$ROOT/plugins/mcp-demo/make-plugin.sh" "$VENV" "$tmp/mcp-demo"
"$WARDEN" plugin register "$tmp/mcp-demo" >/dev/null
SERVER="$tmp/mcp-demo/server.py" "$VENV/bin/python" "$ROOT/Benchmarks/mcp_overhead.py"

#!/usr/bin/env bash
# Writes a registrable copy of this plugin to DIR whose server runs with the `mcp` SDK of VENV: the venv is
# bound read-only into the sandbox at the same path and its bin directory leads PATH, so "python3" is the
# venv's. Usage: make-plugin.sh VENV DIR [NAME]
set -euo pipefail
venv=$(cd "$1" && pwd); dir=$2; name=${3:-mcp-demo}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
cp "$here/server.py" "$dir/server.py"
cat >"$dir/warden-plugin.json" <<JSON
{
  "name": "$name",
  "version": "1.0.0",
  "kind": "mcp",
  "mcp": {"command": ["python3", "server.py"], "env": {"PATH": "$venv/bin:/usr/bin:/bin"}},
  "resources": {"cpu": "250m", "memory": "256Mi"},
  "sandbox": {"profile": "default", "network": "none", "readOnlyPaths": ["$venv"]},
  "timeout": "20s",
  "idempotent": true
}
JSON

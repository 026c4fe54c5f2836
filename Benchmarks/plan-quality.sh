#!/usr/bin/env bash
# Quality of `warden plan --shape` on generated 2-D vector bin packing instances (Benchmarks/gen_vbp.py):
# nodes used against the proven lower bound and, for triplet classes, the optimum known by construction, next
# to first-fit decreasing from the same run, and the time per instance.
#
#   Benchmarks/plan-quality.sh [--json]          SUITE=quick|default|full (default: default)
#   WARDEN=path/to/warden  TIME_LIMIT=10 (seconds per instance)
#
# Exits 1 if any answer is worse than first-fit decreasing, below its own lower bound or a known optimum
# (a bug), leaves a task out, overfills a node, or takes longer than the time limit plus a second.
set -euo pipefail
cd "$(dirname "$0")/.."
WARDEN=${WARDEN:-.build/release/warden}
SUITE=${SUITE:-default}
TIME_LIMIT=${TIME_LIMIT:-10}
JSON=0
[[ "${1:-}" == "--json" ]] && JSON=1
[[ -x "$WARDEN" ]] || { echo "plan-quality: $WARDEN not found (build with: swift build -c release)" >&2; exit 66; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 Benchmarks/gen_vbp.py --suite "$SUITE" --out "$work" > "$work/index.jsonl"

while IFS= read -r line; do
    name=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["name"])' "$line")
    tasks=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["tasks"])' "$line")
    shape=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["shape"])' "$line")
    start=$(date +%s.%N)
    rc=0
    "$WARDEN" plan --tasks "$tasks" --shape "$shape" --time-limit "$TIME_LIMIT" --json > "$work/$name.out.json" || rc=$?
    end=$(date +%s.%N)
    if [[ $rc -ne 0 && $rc -ne 1 ]]; then
        echo "plan-quality: $name: warden exited $rc" >&2
        exit 1
    fi
    python3 -c 'import json,sys; print(json.dumps({"meta": json.loads(sys.argv[1]), "out": sys.argv[2], "seconds": float(sys.argv[4]) - float(sys.argv[3])}))' \
        "$line" "$work/$name.out.json" "$start" "$end" >> "$work/results.jsonl"
done < "$work/index.jsonl"

python3 - "$work/results.jsonl" "$JSON" "$TIME_LIMIT" <<'EOF'
import json, sys

rows, bad = [], []
for line in open(sys.argv[1]):
    r = json.loads(line)
    meta, out = r["meta"], json.load(open(r["out"]))
    used, lb, ffd, opt = out["nodes_used"], out["lower_bound"], out.get("ffd_nodes"), meta["optimum"]
    name = meta["name"]
    if out["unplaced"]:
        bad.append(f"{name}: {len(out['unplaced'])} tasks unplaced")
    if len(out["placements"]) != meta["n"]:
        bad.append(f"{name}: {len(out['placements'])} placements for {meta['n']} tasks")
    for node in out["nodes"]:
        if any(u > 1.0 + 1e-9 for u in node["utilization"].values()):
            bad.append(f"{name}: node {node['name']} overfilled")
    if ffd is not None and used > ffd:
        bad.append(f"{name}: {used} nodes, worse than first-fit decreasing ({ffd})")
    if used < lb or (opt is not None and (used < opt or lb > opt)):
        bad.append(f"{name}: used {used}, bound {lb}, optimum {opt}: inconsistent")
    if r["seconds"] > float(sys.argv[3]) + 1.0:
        bad.append(f"{name}: {r['seconds']:.1f} s")
    rows.append({"instance": name, "class": meta["class"], "n": meta["n"], "nodes": used, "lower_bound": lb,
                 "optimum": opt, "ffd": ffd, "seconds": round(r["seconds"], 2), "method": out.get("method"),
                 "stopped": out.get("stopped")})

def mean(xs):
    return sum(xs) / len(xs) if xs else 0.0

ref = lambda r: r["optimum"] if r["optimum"] is not None else r["lower_bound"]
gap = [100.0 * (r["nodes"] - ref(r)) / ref(r) for r in rows if ref(r)]
ffd_gap = [100.0 * (r["ffd"] - ref(r)) / ref(r) for r in rows if ref(r) and r["ffd"] is not None]
known = [r for r in rows if r["optimum"] is not None]
summary = {
    "instances": len(rows),
    "at_lower_bound": sum(r["nodes"] == r["lower_bound"] for r in rows),
    "known_optimum": len(known),
    "at_known_optimum": sum(r["nodes"] == r["optimum"] for r in known),
    "mean_gap_pct": round(mean(gap), 3),
    "mean_gap_vs_optimum_pct": round(mean([100.0 * (r["nodes"] - r["optimum"]) / r["optimum"] for r in known]), 3),
    "ffd_mean_gap_pct": round(mean(ffd_gap), 3),
    "better_than_ffd": sum(r["ffd"] is not None and r["nodes"] < r["ffd"] for r in rows),
    "worse_than_ffd": sum(r["ffd"] is not None and r["nodes"] > r["ffd"] for r in rows),
    "nodes_total": sum(r["nodes"] for r in rows),
    "ffd_nodes_total": sum(r["ffd"] or 0 for r in rows),
    "lower_bound_total": sum(r["lower_bound"] for r in rows),
    "max_seconds": max((r["seconds"] for r in rows), default=0),
    "mean_seconds": round(mean([r["seconds"] for r in rows]), 2),
    "problems": bad,
}
if sys.argv[2] == "1":
    print(json.dumps({"summary": summary, "instances": rows}, indent=2))
else:
    print(f"{'instance':<22} {'n':>4} {'nodes':>5} {'bound':>5} {'opt':>4} {'ffd':>4} {'sec':>6}  stopped")
    for r in rows:
        opt = "" if r["optimum"] is None else r["optimum"]
        print(f"{r['instance']:<22} {r['n']:>4} {r['nodes']:>5} {r['lower_bound']:>5} {opt!s:>4} {r['ffd']!s:>4} {r['seconds']:>6.2f}  {r['stopped']}")
    s = summary
    print()
    print(f"instances: {s['instances']}; at the lower bound: {s['at_lower_bound']}; "
          f"at the known optimum: {s['at_known_optimum']}/{s['known_optimum']}")
    print(f"mean gap to the lower bound (or optimum): {s['mean_gap_pct']}%  (first-fit decreasing: {s['ffd_mean_gap_pct']}%)")
    print(f"nodes: {s['nodes_total']} vs first-fit decreasing {s['ffd_nodes_total']} vs lower bounds {s['lower_bound_total']}; "
          f"better than FFD on {s['better_than_ffd']}, worse on {s['worse_than_ffd']}")
    print(f"time per instance: mean {s['mean_seconds']} s, max {s['max_seconds']} s")
    for p in bad:
        print("PROBLEM:", p)
sys.exit(1 if bad else 0)
EOF

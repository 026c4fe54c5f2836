#!/usr/bin/env bash
# Sandbox start-up, spawn to exit of /bin/true, in one hyperfine run per round:
#   warden         the whole CLI: `warden sandbox exec --memory … --pids … -- /bin/true` (release build, default
#                  profile: all namespaces, both seccomp filters, a task cgroup with cpu, memory, pids limits)
#   bwrap          bwrap --unshare-all --die-with-parent --ro-bind / / --proc /proc --dev /dev /bin/true
#   bwrap+seccomp  the same with Warden's two filters (exported by `warden bench seccomp-bpf`) through
#                  --add-seccomp-fd; fds come from `fdexec` (hyperfine -N has no shell to open them)
#   unshare        unshare -Urpmin --fork /bin/true
#   fork+exec      /bin/true
#   fdexec         fdexec -- /bin/true (the wrapper's own cost, to read bwrap+seccomp against)
# hyperfine -N (no shell), warm-up runs; "alternating": ROUNDS rounds with the command order rotated each
# round, every run's time pooled per command, so drift on a shared machine hits all commands alike.
# Prints medians and the ratios warden/bwrap. Env: WARDEN (binary), RUNS, ROUNDS, WARMUP, JSON (write the
# summary there too).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WARDEN=${WARDEN:-$ROOT/.build/release/warden}
RUNS=${RUNS:-60}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-10}
export WARDEN_PROFILES="$ROOT/sandbox-profiles"

for tool in hyperfine bwrap unshare cc python3; do
  command -v "$tool" >/dev/null || { echo "spawn.sh: $tool is missing" >&2; exit 69; }
done
[ -x "$WARDEN" ] || { echo "spawn.sh: no warden binary at $WARDEN (swift build -c release --static-swift-stdlib)" >&2; exit 66; }

work=$(mktemp -d /tmp/warden-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/fdexec" "$ROOT/Benchmarks/fdexec.c"
"$WARDEN" bench seccomp-bpf --profile default --out "$work/filter" >/dev/null
filters=("$work"/filter.*.bpf)
seccomp_args=()
for i in "${!filters[@]}"; do seccomp_args+=(--add-seccomp-fd $((10 + i))); done

# Every command must work before it is timed (hyperfine -N would time failures too).
BWRAP="bwrap --unshare-all --die-with-parent --ro-bind / / --proc /proc --dev /dev"
names=(warden bwrap bwrap+seccomp unshare fork+exec fdexec)
cmds=(
  "$WARDEN sandbox exec --memory 256Mi --pids 64 -- /bin/true"
  "$BWRAP /bin/true"
  "$work/fdexec ${filters[*]} -- $(command -v bwrap) ${BWRAP#bwrap } ${seccomp_args[*]} /bin/true"
  "unshare -Urpmin --fork /bin/true"
  "/bin/true"
  "$work/fdexec -- /bin/true"
)
for i in "${!cmds[@]}"; do
  ${cmds[$i]} || { echo "spawn.sh: ${names[$i]} does not run: ${cmds[$i]}" >&2; exit 70; }
done
# The filters must really be in force under bwrap: personality(ADDR_NO_RANDOMIZE) works in plain bwrap and
# is denied by Warden's mandatory filter.
$BWRAP setarch -R /bin/true || { echo "spawn.sh: setarch -R fails even in plain bwrap" >&2; exit 70; }
if "$work/fdexec" "${filters[@]}" -- "$(command -v bwrap)" ${BWRAP#bwrap } "${seccomp_args[@]}" setarch -R /bin/true 2>/dev/null; then
  echo "spawn.sh: bwrap+seccomp did not load the filters" >&2; exit 70
fi

n=${#cmds[@]}
for ((round = 0; round < ROUNDS; round++)); do
  args=()
  for ((k = 0; k < n; k++)); do
    i=$(((k + round) % n))
    args+=(-n "${names[$i]}" "${cmds[$i]}")
  done
  echo "round $((round + 1))/$ROUNDS" >&2
  hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --style basic --export-json "$work/round-$round.json" "${args[@]}" >/dev/null
done

python3 - "$work" "$ROUNDS" "${JSON:-}" <<'EOF'
import json, statistics, sys
work, rounds, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
times = {}
for r in range(rounds):
    for res in json.load(open(f"{work}/round-{r}.json"))["results"]:
        times.setdefault(res["command"], []).extend(res["times"])
med = {k: statistics.median(v) * 1000 for k, v in times.items()}
p90 = {k: sorted(v)[int(0.9 * (len(v) - 1))] * 1000 for k, v in times.items()}
print(f"{'command':<15}{'median ms':>10}{'p90 ms':>10}{'runs':>7}")
for k in ["warden", "bwrap", "bwrap+seccomp", "unshare", "fork+exec", "fdexec"]:
    print(f"{k:<15}{med[k]:>10.2f}{p90[k]:>10.2f}{len(times[k]):>7}")
wrapper = med["fdexec"] - med["fork+exec"]
ratios = {
    "warden/bwrap": med["warden"] / med["bwrap"],
    "warden/bwrap+seccomp": med["warden"] / med["bwrap+seccomp"],
    "warden/bwrap+seccomp (fdexec cost removed)": med["warden"] / (med["bwrap+seccomp"] - wrapper),
}
for k, v in ratios.items():
    print(f"{k:<45}{v:>6.2f}x")
if out:
    json.dump({"median_ms": med, "p90_ms": p90, "ratios": ratios,
               "runs": {k: len(v) for k, v in times.items()}}, open(out, "w"), indent=2)
EOF

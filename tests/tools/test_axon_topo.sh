#!/bin/sh
# tests/tools/test_axon_topo.sh AXON_TOPO CORPUS_DIR - axon-topo end to end:
# the JSON parses and has the documented fields, --check accepts a good file
# and rejects a bad one with FILE:LINE on stderr, bad flags exit 2 with usage.
set -u
topo=$1
corpus=$2
tmp=$(mktemp -d /tmp/axon_topo_test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
# Our own AXON_* variables must not leak into the tool's config.
for v in $(env | sed -n 's/^\(AXON_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done

# 1. JSON for the 64-core server parses and has 64 workers on distinct cores.
if "$topo" --synthetic 'pack:2 numa:2 l3:2 core:8 pu:2' --json >"$tmp/plan.json" 2>"$tmp/err"; then
    if python3 - "$tmp/plan.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
w = p["workers"]
assert len(w) == 64, len(w)
for k in ("worker", "pu", "core", "l3", "numa"):
    assert all(k in x for x in w), k
assert len({x["core"] for x in w}) == 64
nodes = [x["numa"] for x in w]
assert all(nodes.count(n) == 16 for n in range(4)), nodes
m = p["memory"]
for k in ("arena_bytes", "ring_bytes", "ring_mesh_bytes", "arena_total_bytes", "total_bytes"):
    assert isinstance(m[k], int) and m[k] > 0, k
assert m["total_bytes"] == m["arena_total_bytes"] + m["ring_budget_bytes"]
assert p["pinned"] is False and p["this_system"] is False
PY
    then ok "--json on the 64-core server parses with 64 workers, 16 per node"
    else bad "--json output did not parse or lacked fields"; fi
else bad "--json run failed: $(cat "$tmp/err")"; fi

# 2. This machine: text output has the four parts.
if "$topo" >"$tmp/out" 2>&1 && grep -q '^topology: this machine' "$tmp/out" &&
   grep -q 'worker    pu  core    l3  numa' "$tmp/out" && grep -q '^memory budget' "$tmp/out" &&
   grep -q '^warnings' "$tmp/out"; then ok "text output on this machine"
else bad "text output on this machine: $(cat "$tmp/out")"; fi

# 3. --check on every good seed config, and on a bad one (error names file:line).
for f in "$corpus"/good_*.conf; do
    if "$topo" --check --config "$f" >/dev/null 2>"$tmp/err"; then ok "--check accepts $(basename "$f")"
    else bad "--check rejected $f: $(cat "$tmp/err")"; fi
done
printf '[workers]\ncount = 4\n[scheduler]\nring_slots = 100\n' >"$tmp/bad.conf"
"$topo" --check --config "$tmp/bad.conf" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "bad.conf:4: scheduler.ring_slots = 100: expected a power of two" "$tmp/err"; then
    ok "--check rejects a bad file with file:line on stderr"
else bad "--check on a bad file: rc $rc, stderr: $(cat "$tmp/err")"; fi
AXON_WORKERS_CONUT=3 "$topo" --check >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "AXON_WORKERS_CONUT=3: unknown axon variable (did you mean AXON_WORKERS_COUNT?)" "$tmp/err"; then
    ok "an unknown AXON_ variable is an error"
else bad "unknown AXON_ variable: rc $rc, stderr: $(cat "$tmp/err")"; fi

# 3b. --check loads the topology the config names and makes the plan: a bogus
# synthetic string, a missing XML file and a count the topology cannot hold
# fail, naming the line or variable that set them (issue 10, item 13).
printf '# a config\n[topology]\nsynthetic = "bogus:3 nonsense"\n' >"$tmp/synth.conf"
"$topo" --check --config "$tmp/synth.conf" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "synth.conf:3: synthetic topology 'bogus:3 nonsense' is not valid" "$tmp/err"; then
    ok "--check rejects a bogus synthetic string, naming its line"
else bad "--check on a bogus synthetic string: rc $rc, stdout $(cat "$tmp/out"), stderr: $(cat "$tmp/err")"; fi
AXON_TOPOLOGY_XML=/nonexistent/server.xml "$topo" --check >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "AXON_TOPOLOGY_XML (environment): cannot use XML topology '/nonexistent/server.xml'" "$tmp/err"; then
    ok "--check rejects a missing XML file, naming the variable"
else bad "--check on a missing XML file: rc $rc, stdout $(cat "$tmp/out"), stderr: $(cat "$tmp/err")"; fi
printf 'topology.synthetic = pack:1 core:4 pu:1\n\n[workers]\ncount = 6\n' >"$tmp/count.conf"
"$topo" --check --config "$tmp/count.conf" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "count.conf:4: workers.count = 6: the selection has 4 cores" "$tmp/err"; then
    ok "--check rejects a count the topology cannot hold, naming its line"
else bad "--check on too many workers: rc $rc, stderr: $(cat "$tmp/err")"; fi
"$topo" --check --config "$tmp/count.conf" --workers 5 >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "^axon-topo: workers.count = 5: the selection has 4 cores" "$tmp/err"; then
    ok "a count from a flag is not blamed on the file"
else bad "--workers 5 over a file: rc $rc, stderr: $(cat "$tmp/err")"; fi
if "$topo" --check --config "$tmp/count.conf" --workers 4 >"$tmp/out" 2>"$tmp/err" &&
   grep -q "count.conf: ok (4 workers on synthetic: pack:1 core:4 pu:1)" "$tmp/out"; then
    ok "--check accepts a plannable config and says what it planned"
else bad "--check on a good config: stdout $(cat "$tmp/out"), stderr: $(cat "$tmp/err")"; fi
AXON_PREFIX=/usr/local "$topo" --check >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 0 ]; then ok "an unrelated AXON_ variable is left alone"
else bad "AXON_PREFIX: rc $rc, stderr: $(cat "$tmp/err")"; fi

# 4. Precedence: file < env < flags.
printf 'workers.count = 2\ntopology.synthetic = pack:1 core:8 pu:1\n' >"$tmp/p.conf"
n=$("$topo" --config "$tmp/p.conf" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["workers"]))')
ne=$(AXON_WORKERS_COUNT=5 "$topo" --config "$tmp/p.conf" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["workers"]))')
nf=$(AXON_WORKERS_COUNT=5 "$topo" --config "$tmp/p.conf" --workers 7 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["workers"]))')
if [ "$n" = 2 ] && [ "$ne" = 5 ] && [ "$nf" = 7 ]; then ok "precedence file < env < flags"
else bad "precedence: file $n env $ne flag $nf (want 2 5 7)"; fi

# 5. Too many workers fails; --oversubscribe says UNPINNED.
"$topo" --synthetic 'pack:1 core:2 pu:1' --workers 3 >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "workers.count = 3: the selection has 2 cores" "$tmp/err"; then
    ok "more workers than cores fails"
else bad "more workers than cores: rc $rc $(cat "$tmp/err")"; fi
if "$topo" --synthetic 'pack:1 core:2 pu:1' --workers 3 --oversubscribe | grep -q 'OVERSUBSCRIBED'; then
    ok "--oversubscribe warns loudly"
else bad "--oversubscribe did not warn"; fi

# 6. Bad flags: usage and exit 2, never a crash.
for args in "--bogus" "--workers" "--workers abc" "--workers -3" "--smt half" "extra" \
            "--synthetic x --xml y" "--json --json --bogus=1"; do
    # shellcheck disable=SC2086
    "$topo" $args >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -q '^usage: axon-topo' "$tmp/err"; then ok "bad flags '$args' exit 2 with usage"
    else bad "bad flags '$args': rc $rc"; fi
done
"$topo" --synthetic 'not a topology' >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "is not valid hwloc syntax" "$tmp/err"; then ok "bad synthetic string exits 1"
else bad "bad synthetic string: rc $rc"; fi
"$topo" --config /nonexistent.conf >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && ok "missing config exits 1" || bad "missing config"
"$topo" --help | grep -q '^usage: axon-topo' && ok "--help" || bad "--help"

# 7. Cluster plans (issue 15): 4 x 64 cores from a hostfile, slots splitting a
# host, --node-xml and --topology-dir, FILE:LINE errors for bad lines.
SRV='pack:2 numa:2(memory=64GB) l3:2 core:8 pu:2'
printf '# four servers\nn1 slots=1\nn2 slots=1\nn3 slots=1\nn4 slots=1\n' >"$tmp/hosts"
if "$topo" --hostfile "$tmp/hosts" --synthetic "$SRV" --json >"$tmp/c.json" 2>"$tmp/err" &&
   python3 - "$tmp/c.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
c = p["cluster"]
assert c["nodes"] == 4 and c["hosts"] == 4 and c["workers"] == 256, c
n = p["nodes"]
assert [x["host"] for x in n] == ["n1", "n2", "n3", "n4"]
assert all(x["workers"] == 64 and x["numa_nodes"] == [0, 1, 2, 3] for x in n)
assert c["total_bytes"] == sum(x["memory"]["total_bytes"] for x in n)
assert c["arena_total_bytes"] + c["ring_mesh_bytes"] == c["total_bytes"]
assert all(h["topology"]["cores"] == 64 for h in p["hosts"])
assert p["warnings"] == [], p["warnings"]
PY
then ok "--hostfile: 4 x 64 cores plan as JSON with totals"
else bad "--hostfile 4 x 64: $(cat "$tmp/err")"; fi
printf 'big slots=4 # axon: synthetic=%s\n' "$SRV" >"$tmp/hosts4"
if "$topo" --hostfile "$tmp/hosts4" --json 2>"$tmp/err" | python3 -c '
import json, sys
n = json.load(sys.stdin)["nodes"]
assert [x["numa_nodes"] for x in n] == [[0], [1], [2], [3]], n
assert len({p for x in n for p in x["pus"]}) == 64' ; then
    ok "slots=4 gives each node one NUMA node"
else bad "slots=4 split: $(cat "$tmp/err")"; fi
if "$topo" --hostfile "$tmp/hosts4" --node-plans >"$tmp/out" 2>&1 &&
   grep -q '^cluster plan: ' "$tmp/out" && grep -q '^nodes:' "$tmp/out" &&
   grep -q '^hosts:' "$tmp/out" && grep -q '^totals:' "$tmp/out" &&
   grep -q '==== node 3 (host big, 4 of 4 there) ====' "$tmp/out"; then
    ok "text cluster plan with --node-plans"
else bad "text cluster plan: $(cat "$tmp/out")"; fi
if command -v lstopo-no-graphics >/dev/null 2>&1; then
    mkdir -p "$tmp/topo"
    lstopo-no-graphics --input "$SRV" --of xml >"$tmp/topo/n1.xml" 2>/dev/null
    lstopo-no-graphics --input 'numa:1 core:4 pu:1' --of xml >"$tmp/topo/n2.xml" 2>/dev/null
    w=$("$topo" --node-xml "$tmp/topo/n1.xml" --node-xml "$tmp/topo/n2.xml" --json 2>"$tmp/err" |
        python3 -c 'import json,sys; p=json.load(sys.stdin); print(p["cluster"]["workers"], [h["name"] for h in p["hosts"]])')
    if [ "$w" = "68 ['n1', 'n2']" ]; then ok "--node-xml list: 64 + 4 workers, hosts named after the files"
    else bad "--node-xml: got '$w' $(cat "$tmp/err")"; fi
    printf 'n1 slots=1\nn2 slots=2\n' >"$tmp/hosts-dir"
    w=$("$topo" --hostfile "$tmp/hosts-dir" --topology-dir "$tmp/topo" --json 2>"$tmp/err" |
        python3 -c 'import json,sys; p=json.load(sys.stdin); print([x["workers"] for x in p["nodes"]])')
    if [ "$w" = "[64, 2, 2]" ]; then ok "--topology-dir: NAME.xml per host"
    else bad "--topology-dir: got '$w' $(cat "$tmp/err")"; fi
else
    echo "skip --node-xml / --topology-dir: lstopo-no-graphics missing (apt-get install hwloc)"
fi
printf 'n1 slots=1\n\nn2 slots=two\n' >"$tmp/bad-hosts"
"$topo" --hostfile "$tmp/bad-hosts" --synthetic "$SRV" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "bad-hosts:3: slots = 'two': expected a whole number from 1 to 4096" "$tmp/err"; then
    ok "a bad hostfile line exits 1 with FILE:LINE"
else bad "bad hostfile line: rc $rc, stderr: $(cat "$tmp/err")"; fi
printf 'localhost slots=1\nfar slots=1\n' >"$tmp/far-hosts"
"$topo" --hostfile "$tmp/far-hosts" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "far-hosts:2: host far: no topology for this host" "$tmp/err"; then
    ok "a remote host without a topology is named"
else bad "remote host without topology: rc $rc, stderr: $(cat "$tmp/err")"; fi
if "$topo" --hostfile "$tmp/hosts" --synthetic "$SRV" --workers 8 --check >"$tmp/out" 2>"$tmp/err" &&
   grep -q "ok (4 nodes, 32 workers on $tmp/hosts)" "$tmp/out"; then
    ok "--check on a cluster plan; --workers is per node"
else bad "--check cluster: $(cat "$tmp/out") $(cat "$tmp/err")"; fi
# The same file launches and plans: mpirun (Open MPI) accepts a hostfile
# with '# axon:' comments, synonyms and blanks around '='.
printf '# one host, two nodes\nlocalhost slots = 2 max-cpu=4 # axon: synthetic=%s\n// slash comment\n' "$SRV" >"$tmp/mpi-hosts"
if "$topo" --hostfile "$tmp/mpi-hosts" --check >"$tmp/out" 2>"$tmp/err" &&
   grep -q "ok (2 nodes, 64 workers" "$tmp/out"; then ok "a hostfile mpirun takes plans as 2 nodes"
else bad "mpirun-style hostfile: $(cat "$tmp/out") $(cat "$tmp/err")"; fi
if command -v mpirun >/dev/null 2>&1; then
    if OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 60 \
       mpirun --hostfile "$tmp/mpi-hosts" -np 2 true >"$tmp/out" 2>&1; then
        ok "mpirun accepts the same hostfile (2 ranks)"
    else bad "mpirun refused the hostfile axon-topo planned: $(cat "$tmp/out")"; fi
else
    echo "skip mpirun check: openmpi-bin not installed"
fi
# More nodes than a reference can name (AX_REF_NODES_MAX in axon/axon.h)
# is refused; below it, planned.
axon_h=$(cd "$(dirname "$0")/../.." && pwd)/include/axon/axon.h
max=$(sed -n 's/^#define AX_REF_NODES_MAX \([0-9]*\)u\{0,1\}.*/\1/p' "$axon_h" 2>/dev/null)
if [ -n "$max" ]; then
    printf 'big slots=%d # axon: synthetic=pack:1 core:2 pu:1\n' $((max + 1)) >"$tmp/many"
    "$topo" --hostfile "$tmp/many" --oversubscribe --check >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 1 ] && grep -q "$((max + 1)) nodes, but an actor reference names at most $max nodes" "$tmp/err"; then
        ok "$((max + 1)) nodes are refused: a reference names at most $max"
    else bad "$((max + 1)) nodes: rc $rc, stderr $(cat "$tmp/err")"; fi
    printf 'big slots=%d # axon: synthetic=pack:1 core:2 pu:1\n' "$max" >"$tmp/many"
    if "$topo" --hostfile "$tmp/many" --oversubscribe --check >"$tmp/out" 2>"$tmp/err"; then
        ok "$max nodes plan"
    else bad "$max nodes: $(cat "$tmp/err")"; fi
else
    bad "node limit: no AX_REF_NODES_MAX in $axon_h (the reference's node field)"
fi
for args in "--topology-dir /tmp" "--node-plans" "--hostfile" "--node-xml"; do
    # shellcheck disable=SC2086
    "$topo" $args >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -q '^usage: axon-topo' "$tmp/err"; then ok "bad cluster flags '$args' exit 2 with usage"
    else bad "bad cluster flags '$args': rc $rc"; fi
done

echo "axon-topo tool test: $fails failure(s)"
[ $fails -eq 0 ]

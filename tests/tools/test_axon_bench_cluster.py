#!/usr/bin/env python3
"""tests/tools/test_axon_bench_cluster.py - axon-bench's cluster mode end to end
(ctest axon_bench_cluster, labels tool and bench).

usage: test_axon_bench_cluster.py AXON_BENCH WORKDIR

Runs `axon-bench --cluster 4 --quick` on small counts with --json and --csv
and checks: exit 0; every axon cluster result (ping-pong and one-way over
shm (cluster.progress auto and spin) and tcp, ping-pong with wakeup and no
spin, Savina big and the
random mesh on 2 and 4 nodes) verified its own answer and has a nonzero
median with min <= median <= max; when ucx_perftest is installed, its limits
have nonzero figures and each ping-pong / one-way shows a ratio to them;
when erl is installed, the Erlang peer (ping-pong, one-way, big and mesh on
2 and 4 nodes) has nonzero figures, its mesh as many actors and messages
per actor as axon's, and the axon results show a ratio to it; the CSV has
one row per result; nothing forked is left running.  When erl is
installed, an Erlang mesh that loses a message fails instead of reporting
a rate: actor 0's first message dropped (perf/scripts/erlang-dist.sh --drop
0: the per-pair order check), and its last one (AXON_ERL_MESH_DROP through
axon-bench --cluster 2: the count check, after half the script's timeout;
the row is failed, without a figure, and axon-bench exits 1).
Then: --cluster 1 and a bad cluster parameter exit 2.
Speed is never asserted.  It passes on one CPU (the nodes then run
unpinned).
"""
import csv
import json
import os
import shutil
import subprocess
import sys


from benchtest import fail, run as run_bounded


def run(args, timeout=170):
    return run_bounded(args, timeout)


def left_running(marker):
    """Processes whose command line holds marker (the forked nodes keep
    their parent's arguments; erl and ucx_perftest are matched by name and
    our private paths)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], stdout=subprocess.PIPE, text=True).stdout
    me = os.getpid()
    return [l for l in out.splitlines()
            if marker in l and int(l.split()[0]) != me and "ps -eo" not in l]


def lost_messages(exe, work):
    """An Erlang mesh that loses a message fails, with no rate."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "perf",
                          "scripts", "erlang-dist.sh")
    # actor 0's first message: its next one to that actor breaks the pair's order
    # (unless it sent that actor only one: then the count check catches it)
    rc, out, err = run(["bash", script, "--workloads", "mesh", "--nodes", "2", "--actors", "8",
                        "--n", "5000", "--size", "40", "--reps", "1", "--timeout", "10",
                        "--drop", "0"])
    if rc != 1 or "RESULT" in out or "mesh:" not in err:
        fail("erlang mesh with a lost first message: exit %d (want 1), no RESULT, a reason\n"
             "stdout:\n%s\nstderr:\n%s" % (rc, out, err))
    # the last message (50 per actor): only the count per receiver shows it
    js = os.path.join(work, "lost.json")
    env = dict(os.environ, AXON_ERL_MESH_DROP="49")
    args = [exe, "--cluster", "2", "--quick", "--json", js, "--param", "cluster.pairs=0",
            "--param", "cluster.ucx=0", "--param", "cluster.big_pings=10",
            "--param", "cluster.mesh_n=50", "--param", "cluster.mesh_actors=4",
            "--param", "cluster.timeout_s=5"]
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=120, env=env)
    if p.returncode != 1:
        fail("a lost Erlang mesh message: axon-bench exited %d (want 1)\nstdout:\n%s\n"
             "stderr:\n%s" % (p.returncode, p.stdout, p.stderr))
    by = {r["name"]: r for r in json.load(open(js))["results"]}
    r = by.get("cluster/erlang/mesh/2n")
    if r is None or not r["failed"] or r["verified"] or r["runs"] or r["median"]:
        fail("a lost Erlang mesh message: the row should fail without a figure: %r" % (r,))
    if "did not receive all their messages" not in p.stderr:
        fail("a lost Erlang mesh message: the count check did not say so:\n%s" % p.stderr)
    m = by.get("cluster/mesh/2n")
    if m is None or m["failed"] or not m["verified"] or m.get("x_peer"):
        fail("cluster/mesh/2n should verify, without a ratio to a failed peer: %r" % (m,))
    left = left_running(js)
    if left:
        fail("processes left running after the lost-message run: %r" % left)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    exe, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    js, cs = os.path.join(work, "cluster.json"), os.path.join(work, "cluster.csv")
    have_ucx = shutil.which("ucx_perftest") is not None
    have_erl = shutil.which("erl") is not None

    args = [exe, "--cluster", "4", "--quick", "--json", js, "--csv", cs,
            "--param", "cluster.pp_n=1000", "--param", "cluster.ow_n=10000",
            "--param", "cluster.erl_pp_n=500", "--param", "cluster.erl_ow_n=2000",
            "--param", "cluster.big_pings=10", "--param", "cluster.mesh_n=50",
            "--param", "cluster.mesh_actors=4"]
    rc, out, err = run(args)
    if rc != 0:
        fail("%s exited %d\nstdout:\n%s\nstderr:\n%s" % (" ".join(args), rc, out, err))
    try:
        doc = json.load(open(js))
    except ValueError as e:
        fail("--json output does not parse: %s" % e)
    by = {r["name"]: r for r in doc["results"]}
    axon = ["cluster/pingpong/shm", "cluster/oneway/shm", "cluster/pingpong/tcp",
            "cluster/oneway/tcp", "cluster/pingpong/shm-spin", "cluster/oneway/shm-spin",
            "cluster/pingpong/nospin", "cluster/big/2n",
            "cluster/mesh/2n", "cluster/big/4n", "cluster/mesh/4n"]
    for n in axon:
        r = by.get(n)
        if r is None:
            fail("no result %s; results: %s\n%s" % (n, sorted(by), out))
        if r["failed"] or not r["verified"] or not r["runs"] or not r["median"]:
            fail("%s did not verify or has no figure: %r" % (n, r))
        if not (0 < r["min"] <= r["median"] <= r["max"]):
            fail("%s: min/median/max out of order or zero: %r" % (n, r))
        if "nodes=" not in json.dumps(r["params"]) and "nodes" not in r["params"]:
            fail("%s: params do not say the node count: %r" % (n, r["params"]))
    if have_ucx:
        for t in ("shm", "tcp"):
            for test, unit in (("am_lat", "us/rt"), ("am_bw", "msgs/s")):
                n = "cluster/ucx/%s/%s" % (test, t)
                r = by.get(n)
                if r is None or not r["verified"] or not r["median"] or r["median"] <= 0:
                    fail("limit %s missing or without a figure: %r" % (n, r))
                if r["unit"] != unit:
                    fail("%s: unit %r, expected %r" % (n, r["unit"], unit))
            for w in ("pingpong", "oneway"):
                r = by["cluster/%s/%s" % (w, t)]
                if not r.get("limit") or not r.get("pct_of_limit") or r["pct_of_limit"] <= 0:
                    fail("cluster/%s/%s shows no ratio to its limit: %r" % (w, t, r))
                if "x" not in r["note"]:
                    fail("cluster/%s/%s: the note does not print the ratio: %r" % (w, t, r["note"]))
    else:
        print("note: ucx_perftest not installed, the limits were not tested")
    if have_erl:
        for n in ("cluster/erlang/pingpong", "cluster/erlang/oneway", "cluster/erlang/big/2n",
                  "cluster/erlang/big/4n", "cluster/erlang/mesh/2n", "cluster/erlang/mesh/4n"):
            r = by.get(n)
            if r is None or r["failed"] or not r["verified"] or not r["median"] \
                    or r["median"] <= 0:
                fail("peer %s missing or without a figure: %r" % (n, r))
        for k in (2, 4):
            # the same work as axon's mesh: 4 actors per node, 50 messages each
            # (and the same as axon's row says it did)
            p = by["cluster/erlang/mesh/%dn" % k]["params"]
            a = by["cluster/mesh/%dn" % k]["params"]
            want = {"n": 50, "size": 40, "nodes": k, "actors": 4 * k}
            if any(p.get(x) != v for x, v in want.items()) or \
                    (a.get("n"), a.get("actors")) != (50, 4 * k):
                fail("cluster/erlang/mesh/%dn params %r, axon's %r; expected %r"
                     % (k, p, a, want))
        for n in ("cluster/pingpong/shm", "cluster/oneway/shm", "cluster/big/2n",
                  "cluster/big/4n", "cluster/mesh/2n", "cluster/mesh/4n"):
            r = by[n]
            if not r.get("x_peer") or r["x_peer"] <= 0 or "erlang" not in r["note"]:
                fail("%s shows no ratio to Erlang: %r" % (n, r))
            if r.get("peer") != n.replace("cluster/", "cluster/erlang/").replace("/shm", ""):
                fail("%s: peer %r is not Erlang's same workload" % (n, r.get("peer")))
    else:
        print("note: erl not installed, the Erlang peer was not tested")
    rows = list(csv.DictReader(open(cs)))
    if len(rows) != len(doc["results"]):
        fail("CSV has %d rows, JSON %d results" % (len(rows), len(doc["results"])))
    for row in rows:
        if row["name"] in axon and not float(row["median"] or 0) > 0:
            fail("CSV row %s has no median" % row["name"])
    left = left_running(js)
    if left:
        fail("processes left running: %r" % left)
    if "cluster/pingpong/shm" not in out or "%limit" not in out:
        fail("the table does not show the cluster results:\n%s" % out)

    if have_erl:
        lost_messages(exe, work)

    rc, out, err = run([exe, "--cluster", "1"])
    if rc != 2 or "node count" not in err:
        fail("--cluster 1 exited %d (want 2): %s" % (rc, err))
    rc, out, err = run([exe, "--cluster", "2", "--param", "cluster.window=2"])
    if rc != 2 or "cluster.window" not in err:
        fail("cluster.window=2 exited %d (want 2): %s" % (rc, err))
    print("PASS: %d cluster results well-formed (ucx limits %s, erlang peer %s)" %
          (len(doc["results"]), "checked" if have_ucx else "absent",
           "checked" if have_erl else "absent"))


if __name__ == "__main__":
    main()

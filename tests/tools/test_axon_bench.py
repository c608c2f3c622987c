#!/usr/bin/env python3
"""tests/tools/test_axon_bench.py - axon-bench end to end (ctest, label tool).

usage: test_axon_bench.py AXON_BENCH WORKDIR

Runs `axon-bench --quick` on a tiny parameter set (bench.scale_pct=1) with
--json and --csv and checks: exit 0; the JSON parses and has the machine,
config and results sections; every workload of `--list` has a result that
verified its own answer (or was skipped for lack of workers, with a reason);
--plot writes an SVG when gnuplot is installed;
every result has name, params, unit, median, min, max, runs; the CSV has one
row per result.  Then: a bad flag and a bad parameter exit 2 with usage, and
a workload whose own check fails (an impossible window) exits 1 and reports
no speed.  Speed is never asserted here.
"""
import csv
import json
import os
import shutil
import sys


from benchtest import fail, run as run_bounded


def run(args, timeout=120):
    return run_bounded(args, timeout)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    exe, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    js, cs = os.path.join(work, "bench.json"), os.path.join(work, "bench.csv")

    rc, out, err = run([exe, "--list"])
    if rc != 0:
        fail("--list exited %d: %s" % (rc, err))
    workloads = [l.split()[0] for l in out.splitlines()
                 if l.startswith("  ") and not l.startswith("    ") and "group" in l]
    if len(workloads) < 10:
        fail("--list shows %d workloads, expected at least 10:\n%s" % (len(workloads), out))

    svg = os.path.join(work, "bench.svg")
    have_gnuplot = shutil.which("gnuplot") is not None
    if os.path.exists(svg):
        os.remove(svg)
    rc, out, err = run([exe, "--quick", "--json", js, "--csv", cs,
                        "--param", "bench.scale_pct=1", "--param", "fib.n=15"] +
                       (["--plot", svg] if have_gnuplot else []))
    if rc != 0:
        fail("axon-bench --quick exited %d\nstdout:\n%s\nstderr:\n%s" % (rc, out, err))
    try:
        doc = json.load(open(js))
    except ValueError as e:
        fail("--json output does not parse: %s" % e)
    for key in ("machine", "config", "results"):
        if key not in doc:
            fail("JSON has no %r section" % key)
    for key in ("cpu_model", "kernel", "topology"):
        if key not in doc["machine"]:
            fail("JSON machine has no %r" % key)
    results = doc["results"]
    by_name = {r["name"]: r for r in results}
    for r in results:
        for key in ("name", "params", "unit", "median", "min", "max", "runs", "verified"):
            if key not in r:
                fail("result %s has no %r" % (r.get("name"), key))
        if r.get("failed"):
            fail("result %s failed: %s" % (r["name"], r.get("why")))
    for w in workloads:
        r = by_name.get(w)
        if r is None:
            fail("no result for workload %s" % w)
        if r["skipped"]:
            if "workers" not in r["why"]:
                fail("%s skipped without a worker-count reason: %r" % (w, r["why"]))
            continue
        if not r["verified"] or not r["runs"] or r["median"] is None or r["median"] <= 0:
            fail("%s did not verify or has no speed: %r" % (w, r))
        if not (r["min"] <= r["median"] <= r["max"]):
            fail("%s: min/median/max out of order: %r" % (w, r))
    if not any(n.startswith("limits/") for n in by_name):
        fail("no machine limits in the results")
    if not any(n.startswith("scaling/") for n in by_name):
        fail("no scaling sweep in the results")
    # Counts per worker: a worker that handled messages ran turns, and the
    # park and wake counts are there.
    for r in results:
        for pw in r.get("stats", {}).get("per_worker", []):
            for key in ("turns", "parks", "wakes_sent"):
                if key not in pw:
                    fail("%s: per_worker has no %r: %r" % (r["name"], key, pw))
            if pw["handled"] > 0 and pw["turns"] <= 0:
                fail("%s: worker %d handled %d messages in no turn" %
                     (r["name"], pw["worker"], pw["handled"]))
    # A cross-worker scaling row in msgs/s states its ceiling from the ring
    # limit of the same run, and the ceiling is at most the worker count.
    big2 = by_name.get("scaling/big/2w")
    if big2 and big2["runs"] and by_name.get("limits/spsc_ring", {}).get("runs"):
        note = big2.get("note") or ""
        if "ceiling x" not in note:
            fail("scaling/big/2w has no ceiling in its note: %r" % note)
        ceil = float(note.split("ceiling x")[1].split()[0])
        if not 0 < ceil <= 2.0:
            fail("scaling/big/2w: ceiling x%g is not in (0, 2]" % ceil)
    if have_gnuplot:
        head = open(svg).read(200) if os.path.exists(svg) else ""
        if "<svg" not in head and "<?xml" not in head:
            fail("--plot wrote no SVG to %s" % svg)
    else:
        print("note: gnuplot not installed, --plot not tested")
    rows = list(csv.DictReader(open(cs)))
    if len(rows) != len(results):
        fail("CSV has %d rows, JSON %d results" % (len(rows), len(results)))

    rc, out, err = run([exe, "--no-such-flag"])
    if rc != 2 or "usage:" not in err:
        fail("a bad flag exited %d (want 2 with usage): %s" % (rc, err))
    rc, out, err = run([exe, "--param", "counting.nope=1"])
    if rc != 2 or "no parameter" not in err:
        fail("a bad parameter exited %d (want 2): %s" % (rc, err))
    rc, out, err = run([exe, "--param", "counting.n=-5"])
    if rc != 2:
        fail("a negative count exited %d (want 2)" % rc)
    rc, out, err = run([exe, "--only", "nosuch"])
    if rc != 2:
        fail("--only nosuch exited %d (want 2)" % rc)

    # A workload whose own check cannot pass must fail the run loudly.
    rc, out, err = run([exe, "--quick", "--only", "counting", "--json", js,
                        "--param", "bench.limits=0", "--param", "counting.window=100",
                        "--param", "counting.n=1000"])
    if rc != 1 or "FAILED" not in out + err:
        fail("an impossible window exited %d (want 1 and FAILED):\n%s\n%s" % (rc, out, err))
    doc = json.load(open(js))
    r = [x for x in doc["results"] if x["name"] == "counting"][0]
    if r["verified"] or r["median"] is not None:
        fail("a failed workload still reports a speed: %r" % r)
    print("PASS: %d results verified, bad input rejected, failed check exits 1" % len(results))


if __name__ == "__main__":
    main()

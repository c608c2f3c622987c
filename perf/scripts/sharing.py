#!/usr/bin/env python3
"""sharing.py - which cache lines do threads share, and who writes them.

Reads valgrind's lackey memory trace interleaved with its scheduler trace
(valgrind --tool=lackey --trace-mem=yes --trace-sched=yes) on stdin and
counts, per thread, stores to 64-byte lines that another thread also
touches (a store there invalidates the other core's copy on real hardware)
and loads of lines another thread stores to (each such load may miss).

Valgrind runs one thread at a time, so it cannot count how often a line
really moves between cores; what it can count exactly is how many accesses
land on lines that more than one thread uses.  "Shared stores per op" near
zero means the threads' working sets are disjoint in what they write.

usage: valgrind --tool=lackey --trace-mem=yes --trace-sched=yes --log-fd=3 PROG 3>&1 >/dev/null \\
         | sharing.py --ops-pc 0xADDR [--fnmap callgrind.out] [--top N]
  --ops-pc ADDR   an instruction address executed once per operation (the
                  entry of the measured function); counts of it per thread
                  normalise the figures
  --fnmap FILE    a callgrind.out written with --dump-instr=yes
                  --compress-pos=no --compress-strings=no of the same
                  binary: maps instruction offsets to functions
  --maps FILE     the executable lines of /proc/PID/maps of the valgrind
                  process during such a run (valgrind loads objects at the
                  same addresses every run): turns callgrind's offsets
                  into the addresses lackey prints
  --nm BIN        instead of --fnmap: function names of BIN's own code from
                  `nm -n BIN` (a PIE loaded at --nm-base, valgrind's
                  0x108000); library code stays as addresses
  --section-pc ADDR  the entry of a write section (ax_cont_write_enter):
                  from there to the thread's next --ops-pc is one write
                  window; reports the distinct lines each window stores to
                  that another measured thread also uses (loads or stores
                  in its measured span): the lines a write has to take
                  from, and give back to, the other worker's cache.  Unlike
                  counting transfers on valgrind's coarse interleaving
                  (one thread runs ~100k blocks at a time), this does not
                  depend on the schedule: a line counts when the other
                  worker uses it at all, which for a hot table is the
                  case the moves come from.

Example (docs/containers.md, "Lines per write"): perf/scripts/cont-lines.sh
"""
import argparse
import bisect
import collections
import os
import re
import sys


def load_bases(path):
    """Object path -> load bias, from r-xp lines of /proc/PID/maps."""
    bases = {}
    if path:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) >= 6 and "x" in p[1]:
                    bases[p[5]] = int(p[0].split("-")[0], 16) - int(p[2], 16)
    return bases


def load_fnmap(path, bases):
    """Instruction address -> function name from a callgrind.out file."""
    addrs, names = [], []
    fn = "?"
    base = 0
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("ob="):
                ob = re.sub(r"^\(\d+\)\s*", "", line[3:].strip())
                base = bases.get(ob, bases.get(os.path.realpath(ob), 0))
            elif line.startswith("fn="):
                fn = line[3:].strip()
                fn = re.sub(r"^\(\d+\)\s*", "", fn) or fn
            elif line.startswith("0x"):
                try:
                    addrs.append(int(line.split()[0], 16) + base)
                    names.append(fn)
                except ValueError:
                    pass
    order = sorted(range(len(addrs)), key=addrs.__getitem__)
    return [addrs[i] for i in order], [names[i] for i in order]


def load_nm(path, base):
    """Address -> function name of a binary's own symbols (nm -n)."""
    import subprocess
    out = subprocess.run(["nm", "-n", path], capture_output=True, text=True, check=True).stdout
    addrs, names = [], []
    for line in out.splitlines():
        p = line.split()
        if len(p) == 3 and p[1] in "tTwW":
            addrs.append(int(p[0], 16) + base)
            names.append(p[2])
    return addrs, names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops-pc", required=True)
    ap.add_argument("--fnmap")
    ap.add_argument("--maps")
    ap.add_argument("--nm")
    ap.add_argument("--nm-base", default="0x108000")
    ap.add_argument("--section-pc")
    ap.add_argument("--top", type=int, default=12)
    a = ap.parse_args()
    ops_pc = int(a.ops_pc, 16)
    sec_pc = int(a.section_pc, 16) if a.section_pc else None
    windows = []               # (tid, {line: first storing pc}) per write window
    open_win = {}              # tid -> its open window's stores
    sched = re.compile(r"SCHED\[(\d+)\]:\s+acquired lock")
    tid = 1
    pc = 0
    # line -> {tid: [loads, stores]}
    lines = collections.defaultdict(lambda: collections.defaultdict(lambda: [0, 0]))
    store_pcs = collections.defaultdict(collections.Counter)  # line -> pc -> stores
    load_pcs = collections.defaultdict(collections.Counter)
    ops = collections.Counter()
    # Only what a thread does between its first and its last operation
    # counts (start-up, idle spinning and shutdown do not): its accesses
    # wait in pending[tid] and are committed at its next operation.
    pending = collections.defaultdict(list)

    def commit(t):
        for k, ln, p in pending[t]:
            rec = lines[ln][t]
            if k != "S":
                rec[0] += 1
                if k == "L":
                    load_pcs[ln][(t, p)] += 1
            if k != "L":
                rec[1] += 1
                store_pcs[ln][(t, p)] += 1
        pending[t] = []

    for raw in sys.stdin:
        c = raw[0]
        if c == "I":
            pc = int(raw[3:raw.index(",")], 16)
            if sec_pc is not None and (pc == sec_pc or pc == ops_pc) and tid in open_win:
                windows.append((tid, open_win.pop(tid)))
            if pc == sec_pc and ops[tid]:
                open_win[tid] = {}
            if pc == ops_pc:
                if ops[tid]:
                    commit(tid)
                else:
                    pending[tid] = []
                ops[tid] += 1
            continue
        if c == " ":
            k = raw[1]
            if k in "LSM":
                ln = int(raw[3:raw.index(",")], 16) >> 6
                pending[tid].append((k, ln, pc))
                if k != "L" and tid in open_win:
                    open_win[tid].setdefault(ln, pc)
            continue
        m = sched.search(raw)
        if m:
            tid = int(m.group(1))
    workers = [t for t in ops if ops[t] > 1]
    for t in workers:
        ops[t] -= 1  # accesses from the first operation to the last one
    if not workers:
        sys.exit("sharing.py: the --ops-pc address never ran: wrong address?")
    if a.nm:
        fa, fn = load_nm(a.nm, int(a.nm_base, 16))
    else:
        fa, fn = load_fnmap(a.fnmap, load_bases(a.maps)) if a.fnmap else ([], [])

    def where(p):
        if not fa:
            return hex(p)
        i = bisect.bisect_right(fa, p) - 1
        return f"{fn[i]}" if i >= 0 else hex(p)

    shared_st = collections.Counter()
    shared_ld = collections.Counter()
    st_by_pc = collections.Counter()
    ld_by_pc = collections.Counter()
    for ln, per in lines.items():
        if len(per) < 2:
            continue
        writers = {t for t, (l, s) in per.items() if s}
        if not writers:
            continue
        for t, (l, s) in per.items():
            if t not in workers:
                continue
            shared_st[t] += s  # another thread touches this line
            if writers - {t}:
                shared_ld[t] += l  # another thread stores to it
        for (t, p), n in store_pcs[ln].items():
            if t in workers:
                st_by_pc[where(p)] += n
        if len(writers) > 1 or any(w not in per or True for w in writers):
            for (t, p), n in load_pcs[ln].items():
                if t in workers and writers - {t}:
                    ld_by_pc[where(p)] += n
    tot_ops = sum(ops[t] for t in workers)
    print(f"threads measured (ran --ops-pc): {', '.join(f'{t}: {ops[t]} ops' for t in workers)}")
    for t in workers:
        print(f"thread {t}: stores to shared lines {shared_st[t] / ops[t]:.4f}/op, "
              f"loads of lines another thread stores to {shared_ld[t] / ops[t]:.4f}/op")
    print(f"\nstores to shared lines by function (per op, all measured threads; top {a.top}):")
    for w, n in st_by_pc.most_common(a.top):
        print(f"  {n / tot_ops:9.4f}  {w}")
    print(f"\nloads of lines another thread stores to, by function (per op; top {a.top}):")
    for w, n in ld_by_pc.most_common(a.top):
        print(f"  {n / tot_ops:9.4f}  {w}")
    if sec_pc is not None:
        # Only windows inside the measured span (the thread's last
        # operation comes after them: their accesses were committed).
        wins = [(t, st) for t, st in windows if t in workers]
        if not wins:
            sys.exit("sharing.py: no write window: wrong --section-pc, or no writes in the span?")
        by_fn = collections.Counter()
        total = 0
        for t, st in wins:
            for ln, p in st.items():
                if any(o != t and o in workers for o in lines.get(ln, {})):
                    total += 1
                    by_fn[where(p)] += 1
        print(f"\nwrite windows: {len(wins)}; distinct lines each stores to that another "
              f"measured thread uses: {total / len(wins):.3f} per write")
        for w, n in by_fn.most_common(a.top):
            print(f"  {n / len(wins):9.3f}  {w} (first store)")


if __name__ == "__main__":
    main()

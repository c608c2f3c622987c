#!/usr/bin/env python3
"""coherence.py - count cache lines that move between cores in a memory trace.

Reads the log of `valgrind --tool=lackey --trace-mem=yes axon-mesh-sim ...`
(perf/mesh_sim.c), in which the simulator's client requests say which
simulated core runs ("**PID** AXSIM core 5") and where the measured window,
the stack and the engine's shared structures are.  Every data access inside
the window is replayed through a per-line model with 64-byte lines:

  line state: `owner` (the core holding it modified, or none) and `sharers`
  (cores holding a valid copy).
  read by c:  c holds a copy -> hit.  Another core holds it modified ->
              TRANSFER (a cache-to-cache move of a dirty line: what perf c2c
              calls a HITM); both keep a shared copy.  Else a fill from
              memory (counted as `fill`, not a transfer).
  write by c: c owns it modified -> hit.  Another core holds it modified ->
              TRANSFER (read-for-ownership of a dirty line).  Else other
              cores hold shared copies -> INVALIDATION (an upgrade: a
              round trip, no data).  c becomes the only holder, modified.

A "line moved" is a TRANSFER.  The per-message figure divides the window's
transfers by the remote messages the simulator reports ("AXSIM msgs N").
The stack (all simulated workers run on one thread's stack) is left out.
Instructions between "AXSIM core" markers are counted too (lackey's I
lines), as instructions per turn.  A phase marker ("AXSIM phase park")
starts a separate tally, reported per core switch (per park).

Limits: a sequential interleaving (one turn per worker per round), no
prefetch, no capacity evictions, no real timing.  It shows which lines a
protocol shares and how often, not what they cost on a given machine.

usage: coherence.py TRACE|- [--top N]   (-: read the trace from stdin)
"""
import argparse
import bisect
import re
import sys
from collections import Counter, defaultdict

ap = argparse.ArgumentParser()
ap.add_argument("trace")
ap.add_argument("--top", type=int, default=8)
ap.add_argument("--region", default=None, help="list the busiest lines of this region only")
args = ap.parse_args()

marker = re.compile(r"^\*\*\d+\*\* AXSIM (.*)$")
owner = {}       # line -> core holding it modified
sharers = defaultdict(int)  # line -> bitmask of cores with a valid copy
regions = []     # (lo, hi, name)
stack = None
core = 0
measuring = False
phase = "mesh"
tally = {}       # phase -> Counter


def T(ph):
    return tally.setdefault(ph, Counter())


region_of_line = {}
by_line = Counter()
by_region = defaultdict(Counter)
msgs = 0
turns = Counter()


ctl = []  # sorted starts of ring control blocks ("AXSIM ringctl ADDR")
ctl_set = False


def region_name(line):
    global ctl_set
    r = region_of_line.get(line)
    if r is None:
        if not ctl_set:
            ctl.sort()
            ctl_set = True
        addr = line << 6
        r = "other"
        i = bisect.bisect_right(ctl, addr) - 1
        if i >= 0 and addr - ctl[i] < 3 * 64:
            r = ("ring-consumer", "ring-producer", "ring-asleep")[(addr - ctl[i]) >> 6]
        else:
            for lo, hi, name in regions:
                if lo <= addr < hi:
                    r = "ring-slots" if name == "rings" else name
                    break
        region_of_line[line] = r
    return r


def access(line, write):
    bit = 1 << core
    own = owner.get(line)
    sh = sharers[line]
    t = T(phase)
    if write:
        if own == core:
            return
        if own is not None:
            kind = "transfer"
        elif sh & ~bit:
            kind = "invalidation"
        else:
            kind = "fill"
        owner[line] = core
        sharers[line] = bit
    else:
        if sh & bit:
            return
        if own is not None and own != core:
            kind = "transfer"
            owner.pop(line)
        else:
            kind = "fill"
        sharers[line] = sh | bit
    if measuring:
        t[kind] += 1
        if kind != "fill":
            rn = region_name(line)
            by_region[(phase, rn)][kind] += 1
            if kind == "transfer":
                by_line[(phase, line)] += 1


with (sys.stdin if args.trace == "-" else open(args.trace, errors="replace")) as f:
    for raw in f:
        c0 = raw[0:1]
        if c0 == "I":
            if measuring:
                T(phase)["instr"] += 1
            continue
        if c0 == " ":
            if stack is None and not measuring:
                pass
            op = raw[1]
            if op not in "LSM":
                continue
            comma = raw.find(",", 3)
            addr = int(raw[3:comma], 16)
            size = int(raw[comma + 1:])
            if stack and stack[0] <= addr < stack[1]:
                continue
            first, last = addr >> 6, (addr + size - 1) >> 6
            for line in range(first, last + 1):
                if op == "L":
                    access(line, False)
                elif op == "S":
                    access(line, True)
                else:
                    access(line, False)
                    access(line, True)
            continue
        m = marker.match(raw.rstrip("\n"))
        if not m:
            continue
        words = m.group(1).split()
        if words[0] == "core":
            core = int(words[1])
            if measuring:
                T(phase)["turns"] += 1
        elif words[0] == "begin":
            measuring = True
        elif words[0] == "end":
            measuring = False
        elif words[0] == "msgs":
            msgs = int(words[1])
        elif words[0] == "phase":
            if words[1] == "end":
                measuring = False
            else:
                phase = words[1]
                measuring = True
        elif words[0] == "ringctl":
            ctl.append(int(words[1], 16))
        elif words[0] == "region":
            lo, hi = int(words[2], 16), int(words[3], 16)
            if words[1] == "stack":
                stack = (lo, hi)
            else:
                regions.append((lo, hi, words[1]))

mesh = T("mesh")
if not msgs:
    sys.exit("coherence.py: no 'AXSIM msgs N' marker in %s: was the trace made by "
             "axon-mesh-sim under --tool=lackey --trace-mem=yes?" % args.trace)
turns_n = max(mesh["turns"], 1)
print("remote messages        %d" % msgs)
print("turns                  %d" % mesh["turns"])
print("lines moved / message  %.3f   (transfers of dirty lines between cores)" %
      (mesh["transfer"] / msgs))
print("invalidations / message %.3f" % (mesh["invalidation"] / msgs))
print("lines moved / turn     %.2f" % (mesh["transfer"] / turns_n))
print("instructions / turn    %.0f" % (mesh["instr"] / turns_n))
print("instructions / message %.1f" % (mesh["instr"] / msgs))
print("by region (transfers / message, invalidations / message):")
for (ph, rn), c in sorted(by_region.items(), key=lambda kv: -kv[1]["transfer"]):
    if ph == "mesh":
        print("  %-8s %.3f  %.3f" % (rn, c["transfer"] / msgs, c["invalidation"] / msgs))
for ph, t in tally.items():
    if ph == "mesh":
        continue
    n = max(t["turns"], 1)
    print("phase %s: %d calls; per call: %.2f lines moved, %.2f invalidations, %.0f instructions" %
          (ph, t["turns"], t["transfer"] / n, t["invalidation"] / n, t["instr"] / n))
    for (p2, rn), c in sorted(by_region.items(), key=lambda kv: -kv[1]["transfer"]):
        if p2 == ph:
            print("  %-8s %.2f  %.2f" % (rn, c["transfer"] / n, c["invalidation"] / n))
if args.top:
    print("busiest lines (mesh phase):")
    for (ph, line), k in [x for x in by_line.most_common() if x[0][0] == "mesh" and
                          (not args.region or region_name(x[0][1]) == args.region)][:args.top]:
        print("  %#x %-8s %d transfers" % (line << 6, region_name(line), k))

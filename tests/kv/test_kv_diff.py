#!/usr/bin/env python3
"""tests/kv/test_kv_diff.py - random differential test: the same random
commands to axon-kv and to a real redis-server, every reply compared.

  test_kv_diff.py AXON_PORT REDIS_PORT [--seed N] [--count N] [--seconds S]

Commands are drawn from what axon-kv supports (docs/kv.md, "Commands"):
GET SET (NX XX EX PX KEEPTTL, repeated, conflicting and bad options) DEL
EXISTS INCR DECR INCRBY DECRBY MGET MSET EXPIRE PEXPIRE (NX XX GT LT, huge,
negative and bad amounts) TTL PTTL DBSIZE FLUSHALL PING ECHO SELECT CONFIG
GET save/appendonly, unknown commands and wrong arities, over a small key
pool so that they collide.  Values are short strings, integers at the int64
edges, and big values (16 KiB to 100 KiB) whose bytes are sent after their
header, as a client streaming them would.  Commands go in pipelined groups
of 1 to 8 to both servers; replies must be equal, except TTL/PTTL, which
may differ by the time between the two servers' clocks (1 s / 1000 ms).
Deadlines are either long (>= 100 s) or already past, so no key expires
between the two servers' views of it.

The seed is printed; rerun with --seed to reproduce.  Only 127.0.0.1.
Exit 0 when every reply matched, 1 on the first difference (printed with
the commands that led to it), 2 on bad usage.
"""
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kv_clients import Reader  # noqa: E402

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)


def enc(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Gen:
    def __init__(self, rng):
        self.r = rng
        self.keys = [b"k%d" % i for i in range(12)] + [b"n1", b"n2", b"big", b"key with space", b"\x00\xffbin"]

    def key(self):
        return self.r.choice(self.keys)

    def keys_n(self, lo, hi):
        return [self.key() for _ in range(self.r.randint(lo, hi))]

    def small_value(self):
        r = self.r
        c = r.randrange(10)
        if c < 3:
            return b"%d" % r.choice([0, 1, -1, 7, 42, 1000, INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1])
        if c < 5:
            return b"%d" % r.randint(-10**6, 10**6)
        if c == 5:
            return r.choice([b"", b"007", b"+5", b" 5", b"5 ", b"1e3", b"9223372036854775808", b"-0", b"abc"])
        n = r.randrange(1, 40)
        return bytes(r.randrange(32, 127) for _ in range(n))

    def value(self):
        if self.r.randrange(25) == 0:  # a big value: its own blob in the parser, >= 64 KiB: sent from it
            n = self.r.choice([16 * 1024, 16 * 1024 + 7, 70 * 1024, 100 * 1024])
            ch = self.r.randrange(26)
            return bytes((ch + i) % 26 + 97 for i in range(n))
        return self.small_value()

    def ttl_amount(self, unit_ms):
        """A TTL amount that is long (>= 100 s), past, or out of range."""
        r = self.r
        c = r.randrange(12)
        if c < 5:
            return b"%d" % (r.randint(100, 100000) * (1 if unit_ms == 1000 else 1000))
        choices = [b"0", b"-1", b"-100", b"abc", b"", b"1.5", b"%d" % INT64_MAX, b"%d" % INT64_MIN,
                   b"9223372036854775", b"-9223372036854775", b"9223372036854776", b"-9223372036854776",
                   b"9223372036850000000", b"9223372036854"]
        return r.choice(choices)

    def set_cmd(self):
        r = self.r
        args = [b"SET", self.key(), self.value()]
        opts = []
        for _ in range(r.choice([0, 0, 1, 1, 2, 3])):
            c = r.randrange(9)
            if c == 0:
                opts.append(b"NX")
            elif c == 1:
                opts.append(b"XX")
            elif c == 2:
                opts.append(b"KEEPTTL")
            elif c in (3, 4):
                opts += [b"EX", self.ttl_amount(1000)]
            elif c in (5, 6):
                opts += [b"PX", self.ttl_amount(1)]
            elif c == 7:
                opts.append(r.choice([b"ex", b"px"]))  # maybe missing its value
            else:
                opts.append(r.choice([b"BOGUS", b"nx", b"xx", b"keepttl"]))
        return args + opts

    def expire_cmd(self):
        r = self.r
        cmd = r.choice([b"EXPIRE", b"PEXPIRE"])
        args = [cmd, self.key(), self.ttl_amount(1000 if cmd == b"EXPIRE" else 1)]
        for _ in range(r.choice([0, 0, 0, 1, 1, 2])):
            args.append(r.choice([b"NX", b"XX", b"GT", b"LT", b"gt", b"FOO"]))
        return args

    def command(self):
        r = self.r
        c = r.randrange(100)
        if c < 18:
            return [b"GET", self.key()]
        if c < 36:
            return self.set_cmd()
        if c < 41:
            return [b"DEL"] + self.keys_n(1, 4)
        if c < 45:
            return [b"EXISTS"] + self.keys_n(1, 4)
        if c < 52:
            k = r.choice([self.key(), b"n1", b"n2"])
            return r.choice([[b"INCR", k], [b"DECR", k]])
        if c < 58:
            k = r.choice([self.key(), b"n1", b"n2"])
            return [r.choice([b"INCRBY", b"DECRBY"]), k, self.small_value()]
        if c < 62:
            return [b"MGET"] + self.keys_n(1, 5)
        if c < 65:
            args = [b"MSET"]
            for _ in range(r.randint(1, 4)):
                args += [self.key(), self.value()]
            if r.randrange(8) == 0:
                args.pop()  # wrong arity
            return args
        if c < 73:
            return self.expire_cmd()
        if c < 79:
            return [r.choice([b"TTL", b"PTTL"]), self.key()]
        if c < 81:
            return [b"DBSIZE"]
        if c < 82:
            return [b"FLUSHALL"] if r.randrange(3) else [b"FLUSHDB", b"ASYNC"]
        if c < 85:
            return r.choice([[b"PING"], [b"PING", self.value()], [b"ECHO", self.value()]])
        if c < 87:
            return [b"SELECT", r.choice([b"0", b"-1", b"16", b"abc"])]
        if c < 88:
            return [b"CONFIG", b"GET", r.choice([b"save", b"appendonly"])]
        if c < 92:  # unknown commands, with args beginning with...
            return [r.choice([b"NOSUCH", b"getx", b"FOOBAR"])] + [self.small_value() for _ in range(r.randrange(3))]
        # wrong arity
        return r.choice([[b"GET"], [b"GET", b"a", b"b"], [b"SET", b"a"], [b"DEL"], [b"EXISTS"], [b"INCR"],
                         [b"INCRBY", b"a"], [b"MGET"], [b"MSET", b"a"], [b"EXPIRE", b"a"], [b"TTL"],
                         [b"PTTL", b"a", b"b"], [b"DBSIZE", b"x"], [b"ECHO"], [b"PING", b"a", b"b"]])


def show(args):
    out = []
    for a in args:
        out.append(repr(a[:40]) + ("...(%d bytes)" % len(a) if len(a) > 40 else ""))
    return " ".join(out)


def close_enough(cmd, a, b):
    if a == b:
        return True
    name = cmd[0].upper()
    if name in (b"TTL", b"PTTL") and isinstance(a, int) and isinstance(b, int) and a >= 0 and b >= 0:
        return abs(a - b) <= (1 if name == b"TTL" else 1000)
    return False


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.r = Reader(self.s)

    def send(self, data, split_at=None):
        if split_at is None:
            self.s.sendall(data)
        else:  # the header first, the bytes later
            self.s.sendall(data[:split_at])
            time.sleep(0.002)
            self.s.sendall(data[split_at:])


def main():
    a = sys.argv[1:]
    if len(a) < 2 or a[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if a and a[0] in ("-h", "--help") else 2
    ax_port, rd_port = int(a[0]), int(a[1])
    seed = int(a[a.index("--seed") + 1]) if "--seed" in a else int.from_bytes(os.urandom(4), "little")
    count = int(a[a.index("--count") + 1]) if "--count" in a else 3000
    seconds = float(a[a.index("--seconds") + 1]) if "--seconds" in a else 60.0
    print("test_kv_diff: seed %d, up to %d commands or %.0f s (rerun: test_kv_diff.py AXON_PORT REDIS_PORT "
          "--seed %d --count %d)" % (seed, count, seconds, seed, count), flush=True)
    rng = random.Random(seed)
    gen = Gen(rng)
    ax, rd = Conn(ax_port), Conn(rd_port)
    for c in (ax, rd):
        c.send(enc([b"FLUSHALL"]))
        if c.r.reply() != ("ok", "OK"):
            print("test_kv_diff: FLUSHALL at start failed")
            return 1
    history = []
    done = 0
    t0 = time.time()
    while done < count and time.time() - t0 < seconds:
        group = [gen.command() for _ in range(rng.randint(1, 8))]
        big = [g for g in group if any(len(x) >= 16 * 1024 for x in g)]
        if big:  # a big argument goes alone, its bytes after its header
            group = big[:1]
            data = enc(group[0])
            last = group[0][-1] if len(group[0][-1]) >= 16 * 1024 else max(group[0], key=len)
            split = data.find(b"\r\n", data.find(b"$%d\r\n" % len(last))) + 2
            for c in (ax, rd):
                c.send(data, split)
        else:
            data = b"".join(enc(g) for g in group)
            for c in (ax, rd):
                c.send(data)
        for cmd in group:
            try:
                got_ax = ax.r.reply()
            except Exception as e:  # noqa: BLE001 - report whatever broke
                got_ax = "<axon-kv: %s>" % e
            got_rd = rd.r.reply()
            history.append(cmd)
            done += 1
            if not close_enough(cmd, got_ax, got_rd):
                print("test_kv_diff: command %d differs (seed %d)" % (done, seed))
                print("  last commands:")
                for h in history[-12:]:
                    print("    " + show(h))
                print("  axon-kv:      %r" % ((got_ax[:200] if isinstance(got_ax, bytes) else got_ax),))
                print("  redis-server: %r" % ((got_rd[:200] if isinstance(got_rd, bytes) else got_rd),))
                return 1
        history = history[-12:]
    # the final state must agree too
    for k in gen.keys:
        for cmd in ([b"GET", k], [b"PTTL", k]):
            for c in (ax, rd):
                c.send(enc(cmd))
            x, y = ax.r.reply(), rd.r.reply()
            if not close_enough(cmd, x, y):
                print("test_kv_diff: final state of %r differs: %s: axon-kv %r, redis-server %r (seed %d)"
                      % (k, cmd[0], x, y, seed))
                return 1
    print("test_kv_diff: %d commands, every reply equal to redis-server's (%.1f s, seed %d)"
          % (done, time.time() - t0, seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""tests/tools/benchtest.py - what the axon-bench tests share: failing with
a message, and running a program with a bound on its time."""
import subprocess
import sys


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def run(args, timeout):
    """(exit status, stdout, stderr) of args, killed after timeout seconds."""
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr

#!/usr/bin/env python3
"""Instructions per request in plugin (guest) code, by function, for `bench/compare.sh --guest`.

Usage: guest-functions.py SHORT.out LONG.out REQUESTS [TOP]

SHORT.out and LONG.out are callgrind profiles of the same target over two runs, REQUESTS apart.
Callgrind sees the plugins' compiled code only as addresses (`???:0x...`); the gateway, run with
WASMGATE_PERFMAP=1, wrote wasmtime's perf map (/tmp/perf-PID.map) naming them, with the plugins'
own function names when they were built with a name section.
"""
import bisect
import collections
import re
import subprocess
import sys

JIT = re.compile(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?\?\?\?:0x([0-9a-f]+)")


def perf_map(pid):
    """(starts, entries): code ranges and their names; of several names for one address (wasmtime
    registers a component's code once per core module), the demangled one."""
    named = {}
    with open(f"/tmp/perf-{pid}.map") as f:
        for line in f:
            addr, size, name = line.rstrip("\n").split(" ", 2)
            start = int(addr, 16)
            if start not in named or named[start][1].startswith("wasm["):
                named[start] = (int(size, 16), re.sub(r"::h[0-9a-f]{16}$|\[[0-9a-f]{16}\]", "", name))
    entries = sorted((a, s, n) for a, (s, n) in named.items())
    return [e[0] for e in entries], entries


def by_function(profile):
    pid = next(line.split()[1] for line in open(profile) if line.startswith("pid:"))
    starts, entries = perf_map(pid)
    out = subprocess.run(["callgrind_annotate", "--threshold=100", profile], capture_output=True, text=True, check=True)
    counts = collections.Counter()
    for line in out.stdout.splitlines():
        m = JIT.match(line)
        if not m:
            continue
        addr = int(m.group(2), 16)
        i = bisect.bisect_right(starts, addr) - 1
        start, size, name = entries[i] if i >= 0 else (0, 0, "")
        counts[name if start <= addr < start + size else "(unnamed JIT code)"] += int(m.group(1).replace(",", ""))
    return counts


def main():
    short, long, requests = by_function(sys.argv[1]), by_function(sys.argv[2]), int(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    per = {k: (long[k] - short.get(k, 0)) / requests for k in long}
    print(f"{sum(per.values()):9.0f}  all plugin code, instructions per request")
    for name, n in sorted(per.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{n:9.0f}  {name}")


main()

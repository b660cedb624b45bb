#!/usr/bin/env python3
"""Throughput and peak memory of runnerlog.LogScan over a 1,000,000-line
window, side by side with `grep -c 'failed to fetch task'` over the same
bytes.  Figures are printed, not asserted.

    python3 bench/bench_runnerlog.py [--lines N] [--chunk BYTES]

"busy" is what a 1,000,000-line window really looks like (a wedged runner
logs ~150 lines in 5 minutes); "wedged" and "tty" are floods of fetch
errors, the worst case for counting.  Each scan runs in a fresh child process reading the file through a pipe
(`cat FILE |`), as the watchdog reads `docker logs`; its peak RSS is the
child's own ru_maxrss.  Three logs: a wedged runner in logfmt (every line
a fetch error: the worst case), the same in the TTY format with ANSI
colours, a busy healthy runner (relayed job output, a few job starts,
injected "failed to fetch task" text at info level), and a job relaying
the phrase on every line (each line must be judged on its own).
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lib"))

BASE = 1782727200  # 2026-06-29T10:00:00Z


def stamp(i):
    secs = BASE + i // 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%09dZ " % ((i % 1000) * 1000000 + 123)


def line(kind, i):
    ts = stamp(i)
    if kind == "wedged":
        return (
            ts + 'time="%s" level=error msg="failed to fetch task" error="unavailable: read tcp '
            '10.1.0.5:%d->203.0.113.7:443: read: connection reset by peer"\n' % (ts[:19] + "Z", 40000 + i % 20000)
        )
    if kind == "tty":
        return (
            ts + "\x1b[31mERRO\x1b[0m[%s] failed to fetch task                          "
            '\x1b[31merror\x1b[0m="unavailable: unexpected EOF"\n' % (ts[:19] + "Z")
        )
    if kind == "inject":  # a job printing the phrase on every line: the slow path's worst case
        return ts + 'time="%s" level=info msg="[ci/build]   | failed to fetch task %d"\n' % (ts[:19] + "Z", i)
    # busy: job output, occasional job start, injection attempts
    if i % 5000 == 0:
        return ts + 'time="%s" level=info msg="task %d repo is owner/repo https://data.forgejo.org ' \
            'https://forge.azrak.io"\n' % (ts[:19] + "Z", i // 5000)
    if i % 997 == 0:
        return ts + 'time="%s" level=info msg="[ci/build]   | failed to fetch task"\n' % (ts[:19] + "Z")
    return ts + 'time="%s" level=info msg="[ci/build]   | compiling module %d of 4096 ok"\n' % (ts[:19] + "Z", i)


def generate(path, kind, count):
    with open(path, "w", encoding="utf-8") as handle:
        batch = []
        for i in range(count):
            batch.append(line(kind, i))
            if len(batch) == 10000:
                handle.write("".join(batch))
                batch = []
        handle.write("".join(batch))


CHILD = r"""
import os, resource, sys, time
sys.path.insert(0, os.path.join(%(root)r, "lib"))
from forgejo_runner_guard.logs.runnerlog import LogScan
fd = sys.stdin.buffer.fileno()
t0 = time.perf_counter()
scan = LogScan(%(since)r)
while True:
    chunk = os.read(fd, %(chunk)d)
    if not chunk:
        break
    scan.feed(chunk)
ev = scan.close()
t1 = time.perf_counter()
print(t1 - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, ev.lines, ev.errors, len(ev.claimed_tasks))
"""

BARE = r"""
import os, resource, sys
sys.path.insert(0, os.path.join(%(root)r, "lib"))
import forgejo_runner_guard.logs.runnerlog
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def best_of(runs, func):
    return min((func() for _ in range(runs)), key=lambda r: r[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1000000)
    parser.add_argument("--chunk", type=int, default=1 << 20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bare = int(subprocess.run([sys.executable, "-c", BARE % {"root": ROOT}], capture_output=True, text=True,
                              check=True).stdout)
    print("runnerlog.LogScan: %d lines, %d-byte reads, best of %d; interpreter+import peak RSS %.1f MB"
          % (args.lines, args.chunk, args.runs, bare / 1024.0))
    with tempfile.TemporaryDirectory(prefix="frg-bench-") as tmp:
        for kind in ("busy", "wedged", "tty", "inject"):
            path = os.path.join(tmp, kind + ".log")
            generate(path, kind, args.lines)
            size = os.path.getsize(path)
            since = BASE + 0.0
            code = CHILD % {"root": ROOT, "since": since, "chunk": args.chunk}

            def grep():
                t0 = time.perf_counter()
                out = subprocess.run("cat %s | grep -c 'failed to fetch task'" % path, shell=True,
                                     capture_output=True, text=True).stdout
                return time.perf_counter() - t0, int(out)

            def ours():
                with open(path, "rb") as handle:
                    cat = subprocess.Popen(["cat"], stdin=handle, stdout=subprocess.PIPE)
                    t0 = time.perf_counter()
                    out = subprocess.run([sys.executable, "-c", code], stdin=cat.stdout,
                                         capture_output=True, text=True, check=True).stdout
                    wall = time.perf_counter() - t0
                    cat.stdout.close()
                    cat.wait()
                scan_s, rss, lines, errors, claims = out.split()
                return wall, float(scan_s), int(rss), int(lines), int(errors), int(claims)

            g_wall, g_count = best_of(args.runs, grep)
            wall, scan_s, rss, lines, errors, claims = best_of(args.runs, ours)
            print(
                "  %-7s %6.1f MB  grep -c %.3fs (%d)  scan %.3fs = %.2fM lines/s (%.1f MB/s), "
                "process %.3fs = %.2fx grep; peak RSS %.1f MB; errors %d, job starts %d"
                % (kind, size / 1e6, g_wall, g_count, scan_s, lines / scan_s / 1e6, size / scan_s / 1e6,
                   wall, wall / g_wall, rss / 1024.0, errors, claims)
            )
            os.unlink(path)


if __name__ == "__main__":
    main()

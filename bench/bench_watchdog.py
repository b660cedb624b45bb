#!/usr/bin/env python3
"""Benchmark: forgejo-runner-watchdog against a real Docker engine.

    .venv/sh2/bin/python bench/bench_watchdog.py [--lines N] [--repeat N]

Uses the engine at DOCKER_HOST, or starts a throwaway one with
tests/helpers/engine.py (and stops it after).  Runs fake runners
(tests/helpers/fakerunner.sh) under names of its own, never forgejo_runner.

1. One check of a wedged runner (150 errors; dry run) and one of a healthy
   runner, each side by side with the plain
   pipeline `docker logs --since 5m NAME 2>&1 | grep -c 'failed to fetch task'`,
   and the floor: this interpreter starting and importing sh.
   Target: check <= floor + 2 x pipeline.  The wedged runner twice: the log
   alone (verify = none), and its forge asked first (verify = ping, the
   default: `docker inspect` for its files, then the Ping, here to a test
   forge on loopback, tests/helpers/forge.py, named by forge =).
2. A window of 1,000,000 lines: wall time against the same pipeline,
   throughput, and the peak memory (VmHWM / ru_maxrss) of the watchdog
   process itself (the docker CLI it runs is a separate process).
   Targets: within 2 x the pipeline's wall time, peak under 40 MB.

The library is byte-compiled first, as the installed package is.
Figures are printed, not asserted (the machine may be busy).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "helpers"))
import engine  # noqa: E402  (tests/helpers/engine.py)
from forge import Forge  # noqa: E402  (tests/helpers/forge.py)

TOOL = os.path.join(ROOT, "bin", "forgejo-runner-watchdog")
FAKE = os.path.join(ROOT, "tests", "helpers", "fakerunner.sh")

# runs the watchdog in this interpreter and reports its own peak RSS
WRAPPER = r"""
import resource, sys
sys.argv[0] = "forgejo-runner-watchdog"
from forgejo_runner_guard.watchdog.command import main
status = main(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
sys.exit(status)
"""


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = os.path.join(ROOT, "lib")
    e.pop("JOURNAL_STREAM", None)
    return e


def docker(*args, timeout=120):
    return subprocess.run(["docker", *args], env=env(), capture_output=True, text=True,
                          timeout=timeout)


def start_runner(name, *steps):
    docker("rm", "-f", name)
    result = docker("run", "-d", "--init", "--network", "none", "--name", name,
                    "-v", "%s:/fakerunner.sh:ro" % FAKE, engine.IMAGE,
                    "sh", "/fakerunner.sh", *steps, "info", "bench-ready")
    if result.returncode != 0:
        sys.exit("docker run failed: %s" % result.stderr.strip())
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        tail = docker("logs", "--tail", "1", name)
        if "bench-ready" in tail.stdout + tail.stderr:
            return
        time.sleep(0.5)
    sys.exit("%s did not finish logging" % name)


def timed(cmd, shell=False):
    start = time.perf_counter()
    result = subprocess.run(cmd, shell=shell, env=env(), capture_output=True, text=True)
    return time.perf_counter() - start, result


def pipeline(name):
    return "docker logs --since 5m %s 2>&1 | grep -c 'failed to fetch task'" % name


def check_cmd(name, state_dir, rss_file=None, config=None):
    args = ["--dry-run", "--container", name, "--state-dir", state_dir, "-q"]
    if config:
        args += ["--config", config]
    if rss_file:
        return [sys.executable, "-c", WRAPPER, rss_file] + args
    return [sys.executable, TOOL] + args


def small(name, state_dir, repeat, steps=("wedged", "150"), label="150 errors (wedged)",
          config=None):
    start_runner(name, *steps)
    expect = steps[1] if steps[0] == "wedged" else "0"
    floor, pipe, check = [], [], []
    for _ in range(repeat):  # interleaved, so load hits all three alike
        floor.append(timed([sys.executable, "-c", "import sh"])[0])
        t, r = timed(pipeline(name), shell=True)
        assert r.stdout.strip() == expect, r.stdout
        pipe.append(t)
        t, r = timed(check_cmd(name, state_dir, config=config))
        assert r.returncode == 0, r.stderr
        check.append(t)
    f, p, c = (statistics.median(x) * 1000 for x in (floor, pipe, check))
    print("one check, %s (median of %d):" % (label, repeat))
    print("  floor (python + import sh)        %7.1f ms" % f)
    print("  pipeline docker logs | grep -c    %7.1f ms" % p)
    print("  forgejo-runner-watchdog --dry-run %7.1f ms   = %.2fx the pipeline;"
          " target floor + 2x pipeline = %.1f ms: %s"
          % (c, c / p, f + 2 * p, "met" if c <= f + 2 * p else "NOT met"))
    docker("rm", "-f", name)


def large(name, state_dir, lines, repeat):
    t0 = time.perf_counter()
    start_runner(name, "wedged", str(lines))
    print("%d-line window (the fake runner logged it in %.1fs):" % (lines, time.perf_counter() - t0))
    pipe, check, rss = [], [], []
    for _ in range(repeat):
        t, r = timed(pipeline(name), shell=True)
        assert r.stdout.strip() == str(lines), r.stdout
        pipe.append(t)
        with tempfile.NamedTemporaryFile("r") as out:
            t, r = timed(check_cmd(name, state_dir, out.name))
            assert r.returncode == 0, r.stderr
            check.append(t)
            rss.append(int(out.read() or 0) / 1024.0)
    p, c = statistics.median(pipe), statistics.median(check)
    print("  pipeline docker logs | grep -c    %7.2f s   (runs: %s)"
          % (p, ", ".join("%.2f" % x for x in pipe)))
    print("  forgejo-runner-watchdog --dry-run %7.2f s   (runs: %s) = %.2fx the pipeline; "
          "target 2x: %s" % (c, ", ".join("%.2f" % x for x in check), c / p,
                             "met" if c <= 2 * p else "NOT met"))
    print("  throughput                        %7.0f lines/s" % (lines / c))
    print("  peak memory of the watchdog       %7.1f MB  (target < 40 MB: %s)"
          % (max(rss), "met" if max(rss) < 40 else "NOT met"))
    docker("rm", "-f", name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1000000)
    parser.add_argument("--repeat", type=int, default=2, help="runs of the large case")
    parser.add_argument("--small-repeat", type=int, default=10)
    args = parser.parse_args()
    import compileall
    import sh

    # Byte-compile the library first, as the installed package is (dh_python3
    # runs py3compile): with PYTHONDONTWRITEBYTECODE set and a stale or missing
    # __pycache__, every run would compile the modules it imports from source.
    compileall.compile_dir(os.path.join(ROOT, "lib"), quiet=1)

    print("python %s, sh %s, %d cores, load %.1f" % (sys.version.split()[0], sh.__version__,
                                                      os.cpu_count(), os.getloadavg()[0]))
    with engine.given_or_started():
        tag = "frg-bench-%d" % os.getpid()
        state_dir = tempfile.mkdtemp(prefix="frg-bench-state-")
        forge = Forge("answer", "127.0.0.1")
        log_alone, asked = (os.path.join(state_dir, n) for n in ("none.conf", "ping.conf"))
        with open(log_alone, "w") as handle:
            handle.write("[watchdog]\nverify = none\n")
        with open(asked, "w") as handle:
            handle.write("[watchdog]\nforge = %s\n" % forge.url("127.0.0.1"))
        try:
            small(tag + "-small", state_dir, args.small_repeat, config=log_alone,
                  label="150 errors (wedged), the log alone (verify = none)")
            small(tag + "-small", state_dir, args.small_repeat, config=asked,
                  label="150 errors (wedged), its forge asked (verify = ping)")
            small(tag + "-small", state_dir, args.small_repeat, ("healthy",),
                  "a healthy runner (no job listing needed)")
            large(tag + "-large", state_dir, args.lines, args.repeat)
        finally:
            forge.close()
            docker("rm", "-f", tag + "-small", tag + "-large")
            subprocess.run(["rm", "-rf", state_dir])


if __name__ == "__main__":
    main()

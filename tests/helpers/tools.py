"""The source tree's places, the tools run as real subprocesses, and the
checks every command-line test makes of what they print."""

import os
import re
import shutil
import subprocess
import sys

HELPERS = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HELPERS)
ROOT = os.path.dirname(TESTS)
LIB = os.path.join(ROOT, "lib")
FIXTURES = os.path.join(TESTS, "fixtures")


def tool_env(extra=None):
    """Environment for running the tools from the source tree."""
    env = dict(os.environ)
    env["PYTHONPATH"] = LIB + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("JOURNAL_STREAM", None)
    env.update(extra or {})
    return env


def run_tool(name, *args, env=None, timeout=120, input=None):
    """Run bin/NAME with this interpreter; returns CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "bin", name), *args],
        env=tool_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


def copy_tools(top):
    """Copy bin/ and lib/ under `top` (modes kept: readable by everyone):
    a run as another user (nobody) needs no access to the checkout, which
    may be anywhere (a clone under /root, in `mktemp -d`).  -> (bin, lib)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    tools, lib = os.path.join(top, "bin"), os.path.join(top, "lib")
    shutil.copytree(os.path.join(ROOT, "bin"), tools, ignore=ignore)
    shutil.copytree(LIB, lib, ignore=ignore)
    for directory, dirs, files in os.walk(top):
        os.chmod(directory, 0o755)
        for name in files:
            path = os.path.join(directory, name)
            os.chmod(path, 0o755 if directory == tools else 0o644)
    return tools, lib


# What Python says about itself, never what a message for an operator says:
# type names, conversions, codecs, errno tuples, C source lines, reprs.
PYTHON_INTERNALS = re.compile(
    r"NoneType|object is not|has no attribute|not subscriptable|could not convert|"
    r"invalid literal for|indices must be|unhashable|positional argument|codec can't|"
    r"\(_ssl\.c:\d+\)|\[Errno -?\d+\]|Traceback|<class |object at 0x|"
    r"\b(?:dict|list|str|int|float|tuple|bool)\b object")


def plain(text):
    """Assert that `text` shows nothing of Python's internals; -> text."""
    found = PYTHON_INTERNALS.search(text)
    assert found is None, "Python internals (%r) in: %s" % (found.group(), text)
    return text


def no_traceback(proc):
    assert "Traceback" not in proc.stderr, proc.stderr


def one_line(proc):
    """The one line a tool wrote on stderr (no traceback), without its newline."""
    no_traceback(proc)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def write_conf(path, sections):
    """Write a guard.conf: {section: {key: value}} in order; a value of
    several lines is written as the conffile writes lists (one item a
    line, indented).  -> path (str)."""
    path = str(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w") as handle:
        for section, keys in sections.items():
            handle.write("[%s]\n" % section)
            for key, value in keys.items():
                text = "\n    ".join(str(value).splitlines())
                handle.write("%s = %s\n" % (key, text))
    return path

"""Command-line plumbing shared by both commands.

`Parser` turns every usage error into one line and exit 2.  `main()` is
both commands' body: parse, configure, log the configuration files read,
execute.  `run()` wraps
a command's body so that every expected failure (a GuardError) becomes one
line on stderr and its exit status, and a signal (SIGTERM, SIGINT, SIGHUP:
system/signals.py) ends the run after its clean-up, without a traceback.
Only a real bug shows a traceback.
"""

import argparse
import os
import re
import sys

from . import __version__
from .config import check
from .system import signals
from .report import (EXIT_FAILURE, GuardError, Reporter, UsageError, json_printed, print_json,
                     write_stdout)


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2).

    A value that starts with '-' and a digit ('--window -5m') is a value,
    not an option, so its own check says what is wrong with it rather than
    argparse's "expected one argument" (no option starts that way)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\d")

    def error(self, message):
        # run() reports it: one line, and with --json the document
        raise UsageError("%s (see --help)" % message)

    def print_help(self, file=None):
        """--help on stdout: a stdout that cannot take it is one line, exit 1
        (report.write_stdout), never a traceback nor the help on stderr."""
        if file is None:
            write_stdout(self.format_help(), "the help")
        else:
            super().print_help(file)

    def parse_known_args(self, args=None, namespace=None):
        # --check-config checks the configuration and exits, as --help does
        parsed, extra = super().parse_known_args(args, namespace)
        wanted = (getattr(parsed, n, None) is not None for n in ("check_config", "check_config_as"))
        if any(wanted) and not extra:
            self.exit(check.run(self, parsed))
        return parsed, extra


class _Version(argparse.Action):
    """--version: print it on stdout and exit 0; a stdout that cannot take
    it is one line, exit 1 (report.write_stdout)."""

    def __init__(self, option_strings, version, dest=argparse.SUPPRESS,
                 default=argparse.SUPPRESS, help="show program's version number and exit"):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0,
                         help=help)
        self.version = version

    def __call__(self, parser, namespace, values, option_string=None):
        write_stdout(self.version + "\n", "the version")
        parser.exit()


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """RawDescriptionHelpFormatter that sets itself up only when it is used.

    argparse makes a formatter for every add_argument() just to check the
    metavar (which reads no state), and a formatter's setup imports shutil
    (with bz2 and lzma) for the terminal width: a run that prints no help or
    usage never needs it.  The first attribute the formatter lacks runs the
    real __init__ with the original arguments, so help is as before."""

    def __init__(self, *args, **kwargs):
        self._deferred = (args, kwargs)

    def __getattr__(self, name):
        deferred = self.__dict__.pop("_deferred", None)
        if deferred is None:
            raise AttributeError(name)
        super().__init__(*deferred[0], **deferred[1])
        return getattr(self, name)


def make_parser(prog, description, epilog):
    parser = Parser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action=_Version, version="%s %s" % (prog, __version__))
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: /etc/forgejo-runner-guard/guard.conf, "
        "then every *.conf in PATH.d/ in lexical order)",
    )
    check.add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    noise.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    return parser


def verbosity(args):
    return -1 if args.quiet else (1 if args.verbose else 0)


def run(prog, body, argv=None):
    """Run body(argv, reporter) -> exit status, mapping expected failures.
    With --json, a run that ends before its document was printed (a usage
    or configuration error, a failure, an interrupt) prints one:
    {"error": the line, "exit_status": N}."""
    argv = sys.argv[1:] if argv is None else argv
    reporter = Reporter(prog)
    try:
        with signals.handling():  # SIGTERM, SIGINT, SIGHUP: Interrupted, cleaned up after
            return body(argv, reporter)
    except GuardError as exc:
        return _failed(reporter, argv, str(exc) + _hint(exc), exc.exit_code)
    except signals.Interrupted as exc:
        status = _failed(reporter, argv, "interrupted by %s: stopped, what it had started ended"
                         % exc.name, 128 + exc.signum)
        signals.die(exc.signum)  # as the signal's default would have: a service manager sees it
        return status
    except KeyboardInterrupt:
        return _failed(reporter, argv, "interrupted", 130)
    except BrokenPipeError:
        return EXIT_FAILURE


def _failed(reporter, argv, message, status):
    reporter.error(message)
    if wants_json(argv) and not json_printed():
        try:
            print_json({"error": message, "exit_status": status})
        except GuardError:
            pass  # stdout cannot take it: the line above said what went wrong
    return status


def wants_json(argv):
    """Does the command line ask for --json (as argparse reads it: any
    unambiguous prefix, no option after a lone '--')?"""
    for arg in argv:
        if arg == "--":
            return False
        if arg.startswith("--j") and "--json".startswith(arg):
            return True
    return False


def main(prog, build_parser, configure, execute, argv=None):
    """A command: argv -> build_parser() -> configure(args) -> settings
    (with .config_files) -> execute(settings, reporter) -> exit status,
    inside run()."""

    def body(argv, reporter):
        args = build_parser().parse_args(argv)
        reporter.verbosity = verbosity(args)
        settings = configure(args)
        for path in settings.config_files:
            reporter.debug("configuration: %s" % path)
        for text in settings.warnings:  # e.g. errors in sections the command does not use
            reporter.warning(text)
        return execute(settings, reporter)

    return run(prog, body, argv)


def _hint(exc):
    """A hint for a failure caused by a PermissionError in a run that is
    not root (the tools manage root's files), else ""."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, PermissionError) and os.geteuid() != 0:
        return " (not running as root: try sudo)"
    return ""

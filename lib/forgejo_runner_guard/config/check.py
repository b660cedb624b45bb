"""--check-config: would the tools accept this configuration?

Both commands take it (cli.make_parser adds the options, cli.Parser runs
this after parsing and exits).  It reads what the tools would read: the
main file (--config, default /etc/forgejo-runner-guard/guard.conf) and its
drop-ins, plus an optional candidate drop-in that is not in place yet,
such as the temporary file Ansible's `validate=` hands over:

    optimus-boot-reconcile --check-config %s --check-config-as 50-ansible.conf

The candidate is read where /etc/.../guard.conf.d/50-ansible.conf would
be, instead of the file of that name now there.  Exit 0 when every value
is good (with the warnings a run would print: a window too short for its
threshold, drop-ins that cannot be read); exit 2 with one line naming
file:line and [section] key on the first bad one.  Nothing is written.
"""

from . import config, selection
from ..report import EXIT_OK, GuardError, Reporter, UsageError, print_json

HELP = (
    "check the configuration (the main file, its drop-ins and the candidate "
    "drop-in FILE if given) and exit: 0 valid, 2 and file:line: [section] key "
    "on a bad value; writes nothing"
)
AS_HELP = (
    "read the --check-config FILE in the place of PATH.d/NAME (replacing the file "
    "of that name), as the tools will once it is installed there; default: after "
    "every drop-in"
)

# Options that may go with --check-config (the others would be ignored, so
# they are refused).
COMPATIBLE = {"config", "check_config", "check_config_as", "json", "quiet", "verbose", "help", "version"}


def add_arguments(parser):
    parser.add_argument("--check-config", metavar="FILE", nargs="?", const="", help=HELP)
    parser.add_argument("--check-config-as", metavar="NAME", help=AS_HELP)


def others_given(parser, args):
    """The options given beside --check-config that it does not use."""
    given = []
    for action in parser._actions:  # argparse has no public list of its options
        if action.dest in COMPATIBLE or not action.option_strings:
            continue
        if getattr(args, action.dest, None) != action.default:
            given.append(action.option_strings[-1])
    return given


def check(args):
    """-> (exit status, document).  UsageError (exit 2) on a bad file."""
    if args.check_config_as is not None and not args.check_config:
        raise UsageError("--check-config-as needs --check-config FILE")
    candidate = args.check_config or None
    conf = config.load(args.config, candidate=candidate, as_name=args.check_config_as)
    selection.check_distinct(conf.watchdog.runners)
    # what a run would warn about too (a run prints them before it starts)
    warnings = list(conf.warnings) + [w for w in map(selection.unreachable, conf.watchdog.runners) if w]
    return EXIT_OK, {"valid": True, "files": list(conf.files), "warnings": warnings}


def run(parser, args):
    """Check, report one line (or --json's document) -> exit status."""
    reporter = Reporter(parser.prog, verbosity=-1 if args.quiet else (1 if args.verbose else 0))
    try:
        others = others_given(parser, args)
        if others:
            raise UsageError("--check-config does not go with %s" % ", ".join(others))
        status, document = check(args)
        for text in document["warnings"]:  # what is accepted but not as written (a BOM)
            reporter.warning(text)
        if args.json:
            print_json(document)
        else:
            reporter.info("configuration valid: %s" % (", ".join(document["files"]) or "built-in defaults"))
        return status
    except GuardError as exc:
        reporter.error(str(exc))
        if args.json:  # one document, always
            try:
                print_json({"valid": False, "error": str(exc), "files": [], "warnings": [],
                            "exit_status": exc.exit_code})
            except GuardError:
                pass  # stdout cannot take it: the line above said what went wrong
        return exc.exit_code

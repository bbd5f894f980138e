"""gqsub's options, parsed from one table for the command line and for
`#GSAT` directive lines alike.

Not argparse: importing argparse alone costs more than gqsub's whole
start-up budget (SPEC §9: a gqsub call within 1.5 × `python3 -c pass`).
The parser is getopt-like: `-N name`, `-Nname`, `--on X=Y`, `--on=X=Y`,
grouped flags (`-HV`), `--` ends the options.  Stdlib only, no imports.
"""

from gsat.errors import UsageError

# (spellings, destination, kind, metavar, help); kind: flag | value | list
JOB_OPTIONS = (
    (("-N",), "name", "value", "NAME", "job name (default: the script's file name)"),
    (("-o",), "stdout", "value", "PATH", "stdout file; %j becomes the job id"),
    (("-e",), "stderr", "value", "PATH", "stderr file; %j becomes the job id"),
    (("-j",), "join", "value", "oe|eo|n", "oe: stderr joins stdout"),
    (("-d",), "workdir", "value", "DIR", "working directory (default: here)"),
    (("-V",), "export_all", "flag", None, "export the whole environment"),
    (("-v",), "variables", "list", "VAR[=VAL],...", "export these variables"),
    (("-H", "--hold"), "hold", "flag", None, "submit held"),
    (("-q",), "host", "value", "HOST", "run only on HOST"),
    (("-T",), "jobtype", "value", "TYPE", "job type (etc/jobtypes, GSAT_HOME/jobtypes)"),
    (("-m",), "mail_events", "value", "[b][e][a]|n", "mail at begin, end, abort"),
    (("-M",), "mail_to", "list", "ADDR,...", "mail to these addresses"),
    (("--on",), "on", "list", "EVENT=COMMAND", "run COMMAND on EVENT (repeatable)"),
    (("-t",), "array", "value", "FIRST-LAST[%MAX]", "a job array, at most MAX running at once"),
)
COMMAND_OPTIONS = (
    (("--wait",), "wait", "flag", None, "wait for the job; exit with its exit value"),
    (("--json",), "json", "flag", None, 'print {"jobs": [ids]}'),
    (("-h", "--help"), "help", "flag", None, "show this help and exit"),
    (("--version",), "version", "flag", None, "show the version and exit"),
)


def parse(argv: list[str], table=JOB_OPTIONS, interspersed: bool = True) -> tuple[dict, list[str]]:
    """Options given in `argv` (only those) and the positional arguments;
    interspersed=False stops at the first positional (the rest is its own)."""
    spelled = {s: (dest, kind) for spellings, dest, kind, _, _ in table for s in spellings}
    opts: dict = {}
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            rest += list(args)
            break
        if not arg.startswith("-") or arg == "-":
            rest.append(arg)
            if not interspersed:
                rest += list(args)
                break
            continue
        for name, value in _split(arg, spelled):
            dest, kind = spelled[name]
            if kind == "flag":
                opts[dest] = True
                continue
            if value is None:
                value = next(args, None)
                if value is None:
                    raise UsageError(f"option {name} needs a value")
            if kind == "list":
                opts.setdefault(dest, []).append(value)
            else:
                opts[dest] = value
    return opts, rest


def _split(arg: str, spelled: dict):
    """[(option, attached value or None)] for one argv word."""
    if arg.startswith("--"):
        name, eq, value = arg.partition("=")
        if name not in spelled:
            raise UsageError(f"unknown option {name}")
        return [(name, value if eq else None)]
    out = []
    for i in range(1, len(arg)):
        name = "-" + arg[i]
        if name not in spelled:
            raise UsageError(f"unknown option {name}")
        if spelled[name][1] != "flag":
            return out + [(name, arg[i + 1:] or None)]
        out.append((name, None))
    return out


def help_text(prog: str, usage: str, description: str, *tables) -> str:
    lines = [f"usage: {prog} {usage}", "", description, "", "options:"]
    for table in tables:
        for spellings, _, kind, metavar, text in table:
            left = ", ".join(spellings) + (f" {metavar}" if kind != "flag" else "")
            lines.append(f"  {left:<28} {text}")
    return "\n".join(lines) + "\n"

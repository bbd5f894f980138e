"""gsatctl SUBCOMMAND ... or gsatctl --qsub FILE (gsatellite's style).

Subcommands: qsub qstat qdel qhold qrls qsig qwait qpeek; each takes the
arguments of the gq* command of the same name."""

import importlib
import sys

from gsat.cli.common import run, say
from gsat.errors import USAGE

PROG = "gsatctl"
MODULES = {"qsub": "gqsub", "qstat": "gqstat", "qwait": "gqwait", "qpeek": "gqpeek",
           "qdel": None, "qhold": None, "qrls": None, "qsig": None}


def _target(name: str):
    if MODULES[name] is None:
        from gsat.cli.control import main_for
        return main_for("g" + name)
    return importlib.import_module("gsat.cli." + MODULES[name]).main


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\nusage: gsatctl {%s} [ARGS...]" % ",".join(MODULES))
        return 0 if argv else USAGE
    if argv[0] == "--version":
        from gsat import __version__
        print(f"{PROG} (gsat) {__version__}")
        return 0
    name = argv[0][2:] if argv[0].startswith("--") else argv[0]
    if name not in MODULES:
        say(PROG, f"unknown subcommand {argv[0]!r}")
        return USAGE
    return _target(name)(argv[1:])


def entry() -> None:
    sys.argv[0] = PROG
    run(PROG, main)


if __name__ == "__main__":
    entry()

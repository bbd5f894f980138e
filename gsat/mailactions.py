"""What a signed mail may ask for, and whether it is fresh enough to ask.

A signed text that starts with `#!` is a job script.  Otherwise every
non-blank line must be one of

    gqstat [ID...]        gqdel ID...     gqhold ID...     gqrls ID...
    gqsig [-s SIG] ID...  gqpeek ID

and one line that is anything else rejects the whole mail before any line
runs.  No other option and no shell reaches a command: each line becomes a
fixed argv.  Stdlib only.
"""

import re

from gsat.errors import Rejected
from gsat.record import Record

MAX_COMMANDS = 100
ID = r"\d{1,18}"
GRAMMAR = {
    "gqstat": re.compile(rf"gqstat((?: {ID})*)"),
    "gqdel": re.compile(rf"gqdel((?: {ID})+)"),
    "gqhold": re.compile(rf"gqhold((?: {ID})+)"),
    "gqrls": re.compile(rf"gqrls((?: {ID})+)"),
    "gqpeek": re.compile(rf"gqpeek( {ID})"),
    "gqsig": re.compile(rf"gqsig(?: -s (?:[A-Za-z][A-Za-z0-9+]{{0,15}}|\d{{1,2}}))?((?: {ID})+)"),
}


class JobScript(Record):
    __slots__ = ()
    FIELDS = {"script": b""}


class Commands(Record):
    __slots__ = ()
    FIELDS = {"argvs": []}   # [["gqdel", "12"], ["gqsig", "-s", "TERM", "12"], ...]


def parse(text: str) -> JobScript | Commands:
    if text.startswith("#!"):
        return JobScript(script=(text if text.endswith("\n") else text + "\n").encode())
    argvs = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        spelled = " ".join(words)
        grammar = GRAMMAR.get(words[0])
        if grammar is None or not grammar.fullmatch(spelled):
            raise Rejected(f"line {number} is not a gsat command: {spelled[:60]!r}")
        argvs.append(words)
    if not argvs:
        raise Rejected("the signed text is empty")
    if len(argvs) > MAX_COMMANDS:
        raise Rejected(f"more than {MAX_COMMANDS} commands")
    return Commands(argvs=argvs)


def check_age(signed_at: int, now: float, max_age: float, skew: float) -> None:
    if signed_at > now + skew:
        raise Rejected(f"signature made {signed_at - now:.0f} s in the future")
    if signed_at < now - max_age:
        raise Rejected(f"signature is {(now - signed_at) / 86400:.1f} days old (mailgate.max_age "
                       f"is {max_age / 86400:g} days)")

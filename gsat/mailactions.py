"""What a signed mail may ask for, and whether it is fresh enough to ask.

A signed text that starts with `#!` is a job script.  Otherwise every
non-blank line must be a `#GSAT-TO: ADDRESS` line or one of

    gqstat [ID...]        gqdel ID...     gqhold ID...     gqrls ID...
    gqsig [-s SIG] ID...  gqpeek ID

and one line that is anything else rejects the whole mail before any line
runs.  No other option and no shell reaches a command: each line becomes a
fixed argv.  Lines end at LF (CRLF is LF by now); any other line separator
(CR, VT, FF, FS, GS, RS, NEL, U+2028, U+2029) rejects the mail, since a
reader that splits there would see other lines than this one does.  Words
are separated by spaces and tabs only; ids are ASCII digits, at least 1;
signals are those this system knows.

A signature says who wrote a text, not for whom, so the text must also
name the gateway it is meant for: a `#GSAT-TO: ADDRESS` line (in a job
script, in its leading comment block, where #GSAT directives go).  Then a
text signed for anything else (another gateway, a colleague, a mailing
list) never runs here.  Stdlib only.
"""

import re

from gsat import signames
from gsat.errors import Rejected, UsageError
from gsat.record import Record

MAX_COMMANDS = 100
TO = "#GSAT-TO:"
SEPARATORS = re.compile("[\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
ID = r"(?!0+\b)[0-9]{1,18}"  # 007 is 7; 0 is no job
GRAMMAR = {
    "gqstat": re.compile(rf"gqstat((?: {ID})*)", re.ASCII),
    "gqdel": re.compile(rf"gqdel((?: {ID})+)", re.ASCII),
    "gqhold": re.compile(rf"gqhold((?: {ID})+)", re.ASCII),
    "gqrls": re.compile(rf"gqrls((?: {ID})+)", re.ASCII),
    "gqpeek": re.compile(rf"gqpeek( {ID})", re.ASCII),
    "gqsig": re.compile(rf"gqsig(?: -s (?P<sig>[A-Za-z][A-Za-z0-9+]{{0,15}}|[0-9]{{1,2}}))?((?: {ID})+)", re.ASCII),
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
    text = text.replace("\r\n", "\n")
    if SEPARATORS.search(text):
        raise Rejected("a line separator other than LF in the command lines")
    argvs = []
    for number, line in enumerate(text.split("\n"), 1):
        words = [word for word in re.split("[ \t]+", line) if word]
        if words and not words[0].startswith(TO):
            argvs.append(_command(number, words))
    if not argvs:
        raise Rejected("the signed text is empty")
    if len(argvs) > MAX_COMMANDS:
        raise Rejected(f"more than {MAX_COMMANDS} commands")
    return Commands(argvs=argvs)


def _command(number: int, words: list[str]) -> list[str]:
    """The argv of one command line, or Rejected."""
    spelled = " ".join(words)
    grammar = GRAMMAR.get(words[0])
    match = grammar.fullmatch(spelled) if grammar else None
    if match is None:
        raise Rejected(f"line {number} is not a gsat command")
    if match.groupdict().get("sig"):
        try:
            signames.parse(match.group("sig"))
        except UsageError:
            raise Rejected(f"line {number} names no signal this system knows") from None
    return words


def check_addressed(text: str, addresses: set[str]) -> None:
    """Rejected unless a #GSAT-TO line of `text` names one of `addresses` (lower case)."""
    named = {line.strip()[len(TO):].strip().lower() for line in _addressing_lines(text)
             if line.strip().startswith(TO)}
    if not named & addresses:
        raise Rejected(f"the signed text has no line {TO} naming this gateway" if not named
                       else f"the signed text's {TO} line names another gateway")


def _addressing_lines(text: str) -> list[str]:
    """Where a #GSAT-TO line counts: a script's leading comment block, or every command line."""
    lines = text.replace("\r\n", "\n").split("\n")
    if not text.startswith("#!"):
        return lines
    block = []
    for line in lines[1:]:
        if line.strip() and not line.strip().startswith("#"):
            break
        block.append(line)
    return block


def check_age(signed_at: int, now: float, max_age: float, skew: float) -> None:
    if signed_at > now + skew:
        raise Rejected(f"signature made {signed_at - now:.0f} s in the future")
    if signed_at < now - max_age:
        raise Rejected(f"signature is {(now - signed_at) / 86400:.1f} days old (mailgate.max_age "
                       f"is {max_age / 86400:g} days)")

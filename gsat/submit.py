"""From a script and its options to a job spec (job.json), shared by gqsub
and the mail gateway.

Options come from two places: `#GSAT` directive lines in the script's
leading comment block (after the #! line, up to the first line that is not
a comment or blank) and the command line; the command line wins.  Both are
parsed by the same parser, so a directive can say anything an option can.
"""

import argparse
import os
import re
import shlex
import time

from gsat import environment, jobtypes
from gsat.errors import UsageError

EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")
HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}\Z")
ARRAY = re.compile(r"(\d+)(?:-(\d+))?(?:%(\d+))?\Z")
MAIL = re.compile(r"(n|[abe]+)\Z")
MAX_ARRAY = 100000
MAX_SCRIPT = 16 << 20


def add_options(p) -> None:
    """The job options of gqsub and of #GSAT lines (defaults left out, so
    that only what was given shows up and can override)."""
    S = argparse.SUPPRESS
    p.add_argument("-N", dest="name", default=S, help="job name")
    p.add_argument("-o", dest="stdout", default=S, metavar="PATH", help="stdout file (%%j: the id)")
    p.add_argument("-e", dest="stderr", default=S, metavar="PATH", help="stderr file (%%j: the id)")
    p.add_argument("-j", dest="join", default=S, choices=("oe", "eo", "n"), help="oe: join stderr to stdout")
    p.add_argument("-d", dest="workdir", default=S, metavar="DIR", help="working directory")
    p.add_argument("-V", dest="export_all", action="store_true", default=S, help="export the whole environment")
    p.add_argument("-v", dest="variables", action="append", default=S, metavar="VAR[=VAL],...")
    p.add_argument("-H", "--hold", dest="hold", action="store_true", default=S, help="submit held")
    p.add_argument("-q", dest="host", default=S, metavar="HOST", help="run only on HOST")
    p.add_argument("-T", dest="jobtype", default=S, metavar="TYPE", help="job type")
    p.add_argument("-m", dest="mail_events", default=S, metavar="[b][e][a]|n", help="mail on begin/end/abort")
    p.add_argument("-M", dest="mail_to", action="append", default=S, metavar="ADDR,...")
    p.add_argument("--on", dest="on", action="append", default=S, metavar="EVENT=COMMAND",
                   help="run COMMAND on EVENT (repeatable)")
    p.add_argument("-t", dest="array", default=S, metavar="FIRST-LAST[%%MAX]", help="job array")


def directives(script: bytes, parse) -> dict:
    """The options given by `#GSAT` lines, parsed with `parse(tokens)`."""
    tokens = []
    lines = script.decode("utf-8", "replace").splitlines()
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if number == 1 and stripped.startswith("#!"):
            continue
        if stripped and not stripped.startswith("#"):
            break
        if stripped.startswith("#GSAT"):
            try:
                tokens += shlex.split(stripped[5:])
            except ValueError as exc:
                raise UsageError(f"#GSAT line {number}: {exc}") from None
    if not tokens:
        return {}
    try:
        return parse(tokens)
    except UsageError as exc:
        raise UsageError(f"#GSAT directive: {exc}") from None


def build(opts: dict, script_name: str, args: list[str], environ: dict, cwd: str,
          jobtype_dirs: list, submit_host: str) -> dict:
    """The job spec for `opts` (directives merged with the command line)."""
    workdir = _path(opts.get("workdir"), cwd) or cwd
    if not os.path.isdir(workdir):
        raise UsageError(f"working directory {workdir} does not exist")
    jobtype = opts.get("jobtype", "default")
    jobtypes.find(jobtype, jobtype_dirs)
    host = opts.get("host")
    if host is not None and not HOST_NAME.match(host):
        raise UsageError(f"invalid host name {host!r}")
    return {
        "name": _name(opts.get("name") or os.path.basename(script_name)),
        "args": list(args),
        "workdir": workdir,
        "stdout": _path(opts.get("stdout"), cwd),
        "stderr": _path(opts.get("stderr"), cwd),
        "join": opts.get("join") in ("oe", "eo"),
        "env": environment.at_submit(environ, bool(opts.get("export_all")), _split(opts.get("variables"))),
        "host": host,
        "jobtype": jobtype,
        "hold": bool(opts.get("hold")),
        "mail_events": _mail_events(opts.get("mail_events")),
        "mail_to": _split(opts.get("mail_to")),
        "on": _on(opts.get("on") or []),
        "array": _array(opts.get("array")),
        "user": environ.get("USER") or environ.get("LOGNAME") or _login_name(),
        "uid": os.getuid(),
        "submit_host": submit_host,
        "submit_dir": cwd,
        "submit_home": environ.get("HOME", ""),
        "submitted": time.time(),
        "script_name": script_name,
    }


def array_count(spec: dict) -> int:
    array = spec.get("array")
    return array["last"] - array["first"] + 1 if array else 1


def check_script(script: bytes) -> None:
    if not script.strip():
        raise UsageError("the job script is empty")
    if len(script) > MAX_SCRIPT:
        raise UsageError(f"the job script is larger than {MAX_SCRIPT >> 20} MiB")


def _name(name: str) -> str:
    if not name or len(name) > 255 or any(c in name for c in "\n\r\0"):
        raise UsageError(f"invalid job name {name!r}")
    return name


def _path(path: str | None, cwd: str) -> str | None:
    if not path:
        return None
    return os.path.normpath(os.path.join(cwd, os.path.expanduser(path)))


def _split(values) -> list[str]:
    return [v for value in values or [] for v in value.split(",") if v]


def _mail_events(text: str | None) -> str:
    if text is None:
        return ""
    if not MAIL.match(text):
        raise UsageError(f"-m takes [b][e][a] or n, not {text!r}")
    return "" if text == "n" else text


def _on(items: list[str]) -> list[list[str]]:
    out = []
    for item in items:
        event, eq, command = item.partition("=")
        if not eq or not command or not EVENT_NAME.match(event):
            raise UsageError(f"--on takes EVENT=COMMAND, not {item!r}")
        out.append([event, command])
    return out


def _array(text: str | None) -> dict | None:
    if text is None:
        return None
    match = ARRAY.match(text)
    if not match:
        raise UsageError(f"-t takes FIRST-LAST[%MAX], not {text!r}")
    first = int(match.group(1))
    last = int(match.group(2) or first)
    limit = int(match.group(3)) if match.group(3) else None
    if last < first or last - first + 1 > MAX_ARRAY or limit == 0:
        raise UsageError(f"-t {text}: need FIRST <= LAST, at most {MAX_ARRAY} jobs, MAX >= 1")
    return {"first": first, "last": last, "max": limit}


def _login_name() -> str:
    import pwd
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())

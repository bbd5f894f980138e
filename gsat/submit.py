"""From a script and its options to a job spec (job.json), shared by gqsub
and the mail gateway.

Options come from two places: `#GSAT` directive lines in the script's
leading comment block (after the #! line, up to the first line that is not
a comment or blank) and the command line; the command line wins.  Both are
parsed from the same table (gsat.options), so a directive can say anything
an option can.
"""

import os
import time

from gsat import configcheck, environment, jobtypes, options, states
from gsat.errors import UsageError

MAX_ARRAY = 100000
MAX_SCRIPT = 16 << 20


def directives(script: bytes) -> dict:
    """The options given by `#GSAT` lines of the leading comment block."""
    tokens = []
    lines = script.decode("utf-8", "replace").splitlines()
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if number == 1 and stripped.startswith("#!"):
            continue
        if stripped and not stripped.startswith("#"):
            break
        if stripped.startswith("#GSAT") and not stripped.startswith("#GSAT-TO:"):  # the mail gateway's
            import shlex  # only scripts with directives pay for it
            try:
                tokens += shlex.split(stripped[5:])
            except ValueError as exc:
                raise UsageError(f"#GSAT line {number}: {exc}") from None
    if not tokens:
        return {}
    try:
        opts, rest = options.parse(tokens)
    except UsageError as exc:
        raise UsageError(f"#GSAT directive: {exc}") from None
    if rest:
        raise UsageError(f"#GSAT directive: unexpected {rest[0]!r}")
    return opts


def build(opts: dict, script_name: str, args: list[str], environ: dict, cwd: str,
          jobtype_dirs: list, submit_host: str, left_out: list | None = None) -> dict:
    """The job spec for `opts` (directives merged with the command line).
    Inherited variables that cannot be stored (not UTF-8) are left out and
    named in `left_out`; a variable named with -v that cannot is refused."""
    _check_words(opts, args, script_name, cwd)
    workdir = _path(opts.get("workdir"), cwd) or cwd
    if not os.path.isdir(workdir):
        raise UsageError(f"working directory {workdir} does not exist")
    jobtype = opts.get("jobtype", "default")
    if "jobtype" in opts:  # named: parsed and checked now (PyYAML); the default only found
        jobtypes.check(jobtype, jobtype_dirs)
    else:
        jobtypes.find(jobtype, jobtype_dirs)
    host = opts.get("host")
    if host is not None and not configcheck.valid_host(host):
        raise UsageError(f"-q: invalid host name {host!r} (expected [A-Za-z0-9][A-Za-z0-9._-]{{0,63}})")
    if opts.get("join") not in (None, "oe", "eo", "n"):
        raise UsageError(f"-j takes oe, eo or n, not {opts['join']!r}")
    return {
        "name": _name(opts.get("name") or os.path.basename(script_name)),
        "args": list(args),
        "workdir": workdir,
        "stdout": _path(opts.get("stdout"), cwd),
        "stderr": _path(opts.get("stderr"), cwd),
        "join": opts.get("join") in ("oe", "eo"),
        "env": _storable_env(environment.at_submit(environ, bool(opts.get("export_all")),
                                                   _variables(opts.get("variables"))),
                             opts.get("variables"), left_out),
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


def _check_words(opts: dict, args: list[str], script_name: str, cwd: str) -> None:
    """Every option value and argument as _check_text wants it."""
    for spellings, dest, *_ in options.JOB_OPTIONS:
        value = opts.get(dest)
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                _check_text(spellings[-1], text)
    for arg in args:
        _check_text("argument", arg)
    _check_text("script", script_name)
    _check_text("submit directory", cwd)


def _storable_env(env: dict, named, left_out: list | None) -> dict:
    """`env` without the inherited variables that are not UTF-8 (as pbs -V
    would not stop at one stray Latin-1 value); a -v variable must be storable."""
    named = {item.partition("=")[0] for item in _split(named)}
    for name, value in list(env.items()):
        try:
            _check_text("variable", name)
            _check_text(f"variable {name}", value)
        except UsageError:
            if name in named:
                raise
            del env[name]
            if left_out is not None:
                left_out.append(name.encode(errors="replace").decode())
    return env


def _check_text(what: str, text: str) -> None:
    """A NUL ends a C string: a path, name, variable or argument holding one
    cannot reach the job (execve, open); the command line cannot hold one,
    a #GSAT line or a mailed script can.  Bytes that are not UTF-8 (argv
    and environ carry them as lone surrogates) cannot be written to
    job.json.  Both are refused now rather than failing at start."""
    if "\0" in text:
        raise UsageError(f"{what} {text!r}: a NUL character cannot reach a job")
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise UsageError(f"{what} {text!r}: not valid UTF-8 (gsat keeps its files in UTF-8)") from None


def _variables(values) -> list[str]:
    """-v VAR[=value] items; VAR as a shell names one, so that the job's
    environment holds what the user meant (execve takes `=b` or `A B=1`, a
    shell then cannot read them)."""
    items = _split(values)
    for item in items:
        name = item.partition("=")[0]
        if not (name.isascii() and (name[:1].isalpha() or name[:1] == "_") and name.replace("_", "a").isalnum()):
            raise UsageError(f"-v {item!r}: a variable name is [A-Za-z_][A-Za-z0-9_]*")
    return items


def _mail_events(text: str | None) -> str:
    if text is None:
        return ""
    if text != "n" and not (text and set(text) <= set("abe")):
        raise UsageError(f"-m takes [b][e][a] or n, not {text!r}")
    return "" if text == "n" else text


def _on(items: list[str]) -> list[list[str]]:
    out = []
    for item in items:
        event, eq, command = item.partition("=")
        if not eq or not command or not states.valid_event_name(event):
            raise UsageError(f"--on takes EVENT=COMMAND, not {item!r}")
        out.append([event, command])
    return out


def _array(text: str | None) -> dict | None:
    if text is None:
        return None
    span, pct, limit_text = text.partition("%")
    first_text, dash, last_text = span.partition("-")
    parts = [first_text] + ([last_text] if dash else []) + ([limit_text] if pct else [])
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise UsageError(f"-t takes FIRST-LAST[%MAX], not {text!r}")
    first = int(first_text)
    last = int(last_text) if dash else first
    limit = int(limit_text) if pct else None
    if last < first or last - first + 1 > MAX_ARRAY or limit == 0:
        raise UsageError(f"-t {text}: need FIRST <= LAST, at most {MAX_ARRAY} jobs, MAX >= 1")
    return {"first": first, "last": last, "max": limit}


def _login_name() -> str:
    import pwd
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())

"""Fuzzing the parsers that read what others wrote (hypothesis, in-process).

Each parser may refuse its input only with the error its API declares (a
gsat.errors.GsatError subclass, or ValueError where documented), never with
another exception: a traceback in a command, or a step lost in the
controller.  Where a parser accepts, what it gives must be what its contract
says (types, ranges, round trips).

    messages.decode         spool and queue bytes           BadMessage
    jsontext.loads          JSON text, as json.loads        ValueError, same values
    submit.directives       #GSAT lines of a script         UsageError
    options.parse, build    gqsub's command line            UsageError
    config.load             config.yaml, structured and raw UsageError
    mailparse, mailactions  mail bytes, MIME trees, the mailed commands  Rejected

jsontext exists so that the commands need not import json, and its C
scanner behaves differently once json is imported (it then finds
JSONDecodeError to raise), so it and the message decoder are also run in a
child process that has not imported json, as the commands and the
controller's decoder run.
"""

import json
import math
import os
import signal
import subprocess
import sys
import tempfile

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings, strategies as st

from gsat import config, jsontext, mailactions, mailparse, messages, options, signames, states, submit
from gsat.errors import BadMessage, GsatError, Rejected, UsageError
from gsat.paths import Path

pytestmark = pytest.mark.timeout(120)
# the same examples every run of `make test`; GSAT_FUZZ_EXAMPLES=N for N fresh random ones each
FUZZ = settings(max_examples=int(os.environ.get("GSAT_FUZZ_EXAMPLES", "200")), deadline=None, database=None,
                derandomize="GSAT_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# ---- a process that has not imported json -------------------------------

LEAN_DRIVER = r"""
import sys
from gsat import jsontext, messages
assert "json" not in sys.modules, "the driver must not import json"
for line in sys.stdin:
    op, data = line.split()
    data = bytes.fromhex(data[1:])
    try:
        if op == "loads":
            out = "ok " + repr(jsontext.loads(data.decode("utf-8", "surrogatepass")))
        else:
            out = "ok " + repr(messages.decode(data))
    except Exception as exc:
        out = "raise " + ("ValueError" if isinstance(exc, ValueError) and op == "loads" else type(exc).__name__)
    print(out.encode("unicode_escape").decode("ascii"), flush=True)
"""


@pytest.fixture(scope="module")
def lean():
    """A function (op, bytes) -> "ok REPR" | "raise TYPE", run by a child without json."""
    child = subprocess.Popen([sys.executable, "-c", LEAN_DRIVER], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))

    def ask(op: str, data: bytes) -> str:
        child.stdin.write(f"{op} x{data.hex()}\n")  # x: an empty input is still a word
        child.stdin.flush()
        answer = child.stdout.readline()
        assert answer, "the lean driver died"
        return answer.rstrip("\n").encode("ascii").decode("unicode_escape")
    yield ask
    child.stdin.close()
    child.wait(timeout=10)


# ---- JSON ---------------------------------------------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)
JSON_TOKENS = st.lists(st.sampled_from(
    ['{', '}', '[', ']', ',', ':', ' ', '\n', '"a"', '"', '\\', '"\\u12', '"\\ud800"', '"\\x"', '1', '-',
     '-0', '1.5e3', '1e', '.5', '01', 'true', 'tru', 'null', 'NaN', 'Infinity', '-Infinity', '\ufeff',
     '"\x01"', '""']), max_size=12).map("".join)


@st.composite
def mutated(draw, texts):
    """A text with a few characters cut, doubled or put in."""
    text = draw(texts)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        how = draw(st.sampled_from(["cut", "double", "insert"]))
        if how == "cut":
            text = text[:i] + text[i + 1:]
        elif how == "double":
            text = text[:i] + text[i:i + 1] + text[i:]
        else:
            text = text[:i] + draw(st.sampled_from(list('{}[],:"\\ -+.eE0n\x00\ud800é'))) + text[i:]
    return text


JSON_TEXTS = (st.text(max_size=30) | JSON_TOKENS | JSON_VALUES.map(json.dumps)
              | mutated(JSON_VALUES.map(json.dumps)))


def json_outcome(text: str) -> str:
    try:
        return "ok " + repr(json.loads(text))
    except ValueError:
        return "raise ValueError"


@FUZZ
@given(JSON_TEXTS)
@example('{"a" 1}')
def test_jsontext_loads_accepts_and_rejects_as_json_does(lean, text):
    want = json_outcome(text)
    try:
        here = "ok " + repr(jsontext.loads(text))
    except ValueError:
        here = "raise ValueError"
    assert here == want
    assert lean("loads", text.encode("utf-8", "surrogatepass")) == want, "in a process without json"


@FUZZ
@given(JSON_VALUES, st.booleans())
def test_jsontext_dumps_writes_what_json_writes(value, sort_keys):
    assert jsontext.dumps(value, sort_keys) == json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                                                          sort_keys=sort_keys)


# ---- the message decoder ---------------------------------------------------

def field_value(kind):
    """Values of the declared type of a message field."""
    return {str: st.text(max_size=10), int: st.integers(), bool: st.booleans(),
            messages.OPTIONAL_STR: st.none() | st.text(max_size=10)}.get(kind)


@st.composite
def good_messages(draw):
    cls = draw(st.sampled_from(sorted(messages.KINDS.values(), key=lambda c: c.kind)))
    fields = {}
    for name, kind in cls.TYPES.items():
        if draw(st.booleans()):
            item = messages.ITEM_TYPES.get(name)
            fields[name] = draw(st.lists(field_value(item), max_size=4) if kind is list else field_value(kind))
    return cls(**fields)


ANY_FIELDS = st.dictionaries(st.sampled_from(sorted({n for c in messages.KINDS.values() for n in c.TYPES}
                                                    | {"v", "kind", "extra"})), JSON_VALUES, max_size=5)
MESSAGE_BODIES = st.builds(lambda kind, fields: {**fields, "kind": kind},
                           st.sampled_from(sorted(messages.KINDS) + ["nope", ""]) | JSON_VALUES, ANY_FIELDS)


def has_declared_types(msg: messages.Message) -> bool:
    for name, kind in type(msg).TYPES.items():
        value = getattr(msg, name)
        if kind == messages.OPTIONAL_STR:
            ok = value is None or isinstance(value, str)
        elif kind is list:
            item = messages.ITEM_TYPES.get(name)
            ok = isinstance(value, list) and (item is None or all(
                type(v) is item for v in value))
        else:
            ok = type(value) is kind
        if not ok:
            return False
    return True


@FUZZ
@given(st.binary(max_size=200) | JSON_TEXTS.map(lambda t: t.encode("utf-8", "surrogatepass")))
@example(b'{"kind": []}')
@example(b'{"kind": "hold", "jobs": [1]')
def test_decoding_any_bytes_gives_a_message_or_bad_message(lean, data):
    try:
        msg = messages.decode(data)
    except BadMessage:
        pass
    else:
        assert has_declared_types(msg)
    assert lean("decode", data).startswith(("ok ", "raise BadMessage")), "in a process without json"


@FUZZ
@given(MESSAGE_BODIES)
def test_a_decoded_message_has_what_the_body_said_with_declared_types(body):
    try:
        msg = messages.decode(json.dumps(body).encode())
    except BadMessage:
        event("refused")
        return
    assert msg.kind == body["kind"]
    assert has_declared_types(msg)
    for name, default in type(msg).FIELDS.items():
        assert getattr(msg, name) == body.get(name, default)


@FUZZ
@given(good_messages())
def test_a_message_decodes_to_what_was_encoded(msg):
    assert messages.decode(messages.encode(msg)) == msg


# ---- #GSAT directives and gqsub's options ----------------------------------

SPELLINGS = sorted(s for spellings, *_ in options.JOB_OPTIONS + options.COMMAND_OPTIONS for s in spellings)
DESTS = {dest: kind for _, dest, kind, _, _ in options.JOB_OPTIONS + options.COMMAND_OPTIONS}
VALUES = st.sampled_from(["x", "oe", "n", "abe", "1-3", "1-3%2", "0", "3-1", "%", "A=b", "A", "=b",
                          "END=echo", "bad name=x", "", "-", "--", "~", "~nobody\x00/x", "a,b,,c", "-N"]) \
    | st.text(max_size=8)
WORDS = st.sampled_from(SPELLINGS) | VALUES | st.builds(lambda s, v: f"{s}={v}", st.sampled_from(SPELLINGS), VALUES) \
    | st.builds(lambda a, b: a + b[1:], st.sampled_from(SPELLINGS), st.sampled_from(SPELLINGS)) \
    | st.builds(lambda s, v: s + v, st.sampled_from([s for s in SPELLINGS if len(s) == 2]), VALUES)
# an option and a value side by side as often as a word alone
ARGVS = st.lists(st.tuples(st.sampled_from(SPELLINGS), VALUES).map(list) | WORDS.map(lambda w: [w]),
                 max_size=6).map(lambda pairs: [w for pair in pairs for w in pair])


def options_are_declared(opts: dict) -> bool:
    """Only declared destinations, each with the shape of its kind."""
    for dest, value in opts.items():
        kind = DESTS.get(dest)
        if kind == "flag" and value is not True:
            return False
        if kind == "value" and not isinstance(value, str):
            return False
        if kind == "list" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return False
        if kind is None:
            return False
    return True


@FUZZ
@given(ARGVS)
def test_the_option_parser_gives_declared_options_or_a_usage_error(argv):
    try:
        opts, rest = options.parse(argv, options.JOB_OPTIONS + options.COMMAND_OPTIONS)
    except UsageError:
        event("refused")
        return
    assert options_are_declared(opts)
    assert options.parse(["--", *argv]) == ({}, argv)  # after --, nothing is an option


def shell_word(word: str) -> str:
    import shlex
    return shlex.quote(word)


LINE = st.one_of(
    st.lists(WORDS, max_size=4).map(lambda ws: "#GSAT " + " ".join(map(shell_word, ws))),
    st.lists(WORDS, max_size=4).map(lambda ws: "#GSAT " + " ".join(ws)),  # unquoted: shlex may refuse
    st.sampled_from(["", "   ", "# a comment", "#GSAT", "#GSAT -N 'open", "#!/bin/bash"]),
    st.text(max_size=20).map(lambda t: "#" + t))
SCRIPTS = st.builds(lambda shebang, lines: (shebang + "\n".join(lines) + "\n"),
                    st.sampled_from(["#!/bin/sh\n", "", "#!/usr/bin/env python3\n"]), st.lists(LINE, max_size=5))


def directives_of(script: str, junk: bytes = b"") -> dict | str:
    try:
        return submit.directives(script.encode("utf-8", "surrogatepass") + junk)
    except UsageError:
        return "refused"


@FUZZ
@given(SCRIPTS, st.binary(max_size=10))
def test_directives_are_declared_options_or_a_usage_error(script, junk):
    opts = directives_of(script, junk)
    event(opts if opts == "refused" else "accepted")
    assert opts == "refused" or options_are_declared(opts)


@FUZZ
@given(SCRIPTS, st.lists(LINE, max_size=3))
def test_lines_after_the_first_command_are_not_directives(script, after):
    assert directives_of(script + "true\n" + "\n".join(after)) == directives_of(script)


@pytest.fixture(scope="module")
def submit_dir():
    with tempfile.TemporaryDirectory(prefix="gsat-fuzz-") as folder:
        yield folder


@FUZZ
@given(ARGVS, st.dictionaries(st.sampled_from(["HOME", "USER", "PATH", "LANG", "LC_ALL", "A", "B"]),
                              st.text(st.characters(exclude_characters="\0"), max_size=5), max_size=4))
@example(["-v", "=b"], {})
@example(["-v", "A\x00B=1"], {})
def test_a_built_job_spec_is_valid_or_a_usage_error(submit_dir, argv, environ):
    """environ: a submitter's environment, which cannot hold a NUL."""
    try:
        opts, _ = options.parse(argv)
        spec = submit.build(opts, "job.sh", [], environ, submit_dir,
                            [Path(submit_dir), config.share_dir() / "etc" / "jobtypes"], "testhost")
    except UsageError:
        event("refused")
        return
    assert spec["name"] and len(spec["name"]) <= 255 and not set(spec["name"]) & set("\n\r\0")
    for name, value in spec["env"].items():  # what execve can hold
        assert name and "=" not in name and "\0" not in name and "\0" not in value, (name, value)
    assert set(spec["mail_events"]) <= set("abe")
    assert all(states.valid_event_name(event) and command for event, command in spec["on"])
    array = spec["array"]
    if array:
        assert 0 <= array["first"] <= array["last"] and (array["max"] is None or array["max"] >= 1)
    assert os.path.isdir(spec["workdir"])


@FUZZ
@given(VALUES | st.integers(-2, 70).map(str) | st.sampled_from(sorted(signal.Signals.__members__))
       | st.sampled_from(["TERM", "sigterm", "SIGKILL", "0", "SIG", " 15 ", "+9", "\u0669"]))
def test_a_signal_is_a_number_the_system_has_or_a_usage_error(text):
    try:
        number = signames.parse(text)
    except UsageError:
        event("refused")
        return
    assert number in {s.value for s in signal.Signals}


# ---- the config loader -------------------------------------------------------

ODD_SCALARS = (st.none() | st.booleans() | st.integers(-5, 10**20) | st.floats() | st.text(max_size=8)
               | st.sampled_from(["fifo", "nobatch", "poll", "inotify", "auto", "file", "sysv", "tls",
                                  "starttls", "yes", "2001-12-14", "0x10", "1e3", "/x", ".h", "h"]))
ODD_VALUES = st.recursive(ODD_SCALARS, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(ODD_SCALARS.filter(lambda v: v is not None), inner, max_size=3),
                          max_leaves=6)


def section(name: str):
    keys = st.sampled_from(sorted(config.DEFAULTS[name]) + ["nope"]) | ODD_SCALARS.filter(lambda v: v is not None)
    return st.dictionaries(keys, ODD_VALUES, max_size=4) | ODD_VALUES


CONFIGS = st.fixed_dictionaries({}, optional={
    **{key: ODD_VALUES for key in config.DEFAULTS if key not in ("mail", "mailgate")},
    "mail": section("mail"), "mailgate": section("mailgate"), "nope": ODD_VALUES})
YAML_TEXTS = (CONFIGS.map(lambda d: yaml.safe_dump(d, allow_unicode=True))
              | st.text(max_size=40) | mutated(CONFIGS.map(yaml.safe_dump)))


def typed_like_the_defaults(values: dict, defaults: dict) -> bool:
    """Every value of the type of its default: numbers finite, bools bools, strings strings."""
    for key, default in defaults.items():
        value = values[key]
        if isinstance(default, dict):
            if not isinstance(value, dict) or (key != "allow" and not typed_like_the_defaults(value, default)):
                return False
        elif isinstance(default, bool):
            if type(value) is not bool:
                return False
        elif isinstance(default, (int, float)):
            if type(value) is not type(default) or not math.isfinite(value):
                return False
        elif isinstance(default, str) and not isinstance(value, str):
            return False
        elif default is None and key in ("hostname",) and not isinstance(value, str):
            return False
    return True


@pytest.fixture
def no_gsat_env(monkeypatch):
    for var in ("GSAT_HOSTNAME", "GSAT_WATCH", "GSAT_CHANNEL", "GSAT_POLL_INTERVAL", "GSAT_HOME"):
        monkeypatch.delenv(var, raising=False)


@FUZZ
@given(YAML_TEXTS)
@example("hostname: caf\udce9\n")  # a Latin-1 byte in a file that should be UTF-8
@example("slots: .inf\n")
@example("kill_grace: .nan\n")
@example("{1: 2, a: 3}\n")
@example("autostart: maybe\n")
def test_a_config_loads_valid_or_is_a_usage_error(no_gsat_env, text):
    with tempfile.TemporaryDirectory(prefix="gsat-fuzz-") as folder:
        home = Path(folder)
        with open(home / "config.yaml", "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(text)
        try:
            loaded = config.load(home)
        except UsageError:
            event("refused")
            return
        values = loaded.values
        assert typed_like_the_defaults(values, config.DEFAULTS), values
        assert values["scheduler"] in config.SCHEDULERS and values["watch"] in config.WATCHES
        assert values["channel"] in config.CHANNELS
        for key in ("slots", "kill_grace", "poll_interval", "timeout", "service_timeout",
                    "heartbeat_interval", "idle_heartbeat_interval"):
            assert values[key] > 0, key
        # the second load reads the cache the first wrote: the same values
        assert repr(config.load(home).values) == repr(values)


# ---- the mail front end -------------------------------------------------------

HEADER_NAMES = st.sampled_from(["Content-Type", "Content-Transfer-Encoding", "Message-ID", "From",
                                "MIME-Version", "Auto-Submitted", "X-Odd"])
CTYPES = st.sampled_from(["text/plain", "multipart/signed", "multipart/encrypted", "multipart/mixed",
                          "application/pgp-signature", "application/pgp-encrypted", "application/octet-stream",
                          "message/rfc822", "text/html", "", "multipart/"])
PARAMS = st.lists(st.sampled_from([
    'boundary="b1"', "boundary=b1", 'boundary=""', 'protocol="application/pgp-signature"',
    'protocol="application/pgp-encrypted"', "protocol*=utf-8''application%2Fpgp-signature",
    "protocol*=idna''x", "protocol*0=app; protocol*1=lication/pgp-signature", 'charset="utf-8"',
    "charset=unknown-8bit", "charset*=x''y", 'format=flowed', "delsp=yes", "micalg=pgp-sha256", "==", ";"]),
    max_size=4)
ENCODINGS = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "binary", "bogus"])
ARMOR = st.sampled_from([b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\ngqstat\n"
                         b"-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n",
                         b"-----BEGIN PGP MESSAGE-----\n\nabc\n-----END PGP MESSAGE-----\n",
                         b"-----BEGIN PGP SIGNATURE-----\n", b"gqstat\n", b"", b"=?utf-8?q?x?=\n", b"\r\r\n"])


@st.composite
def mime(draw, depth=0):
    """A MIME entity as bytes: headers drawn from odd but plausible ones, a body of
    armor pieces, random bytes, or (for multiparts) further entities between boundaries."""
    ctype = draw(CTYPES)
    head = [f"Content-Type: {'; '.join([ctype] + draw(PARAMS))}"]
    if draw(st.booleans()):
        head.append(f"Content-Transfer-Encoding: {draw(ENCODINGS)}")
    for name in draw(st.lists(HEADER_NAMES, max_size=2)):
        head.append(f"{name}: {draw(st.text(max_size=12))}")
    newline = draw(st.sampled_from([b"\r\n", b"\n"]))
    head_bytes = newline.join(line.encode("utf-8", "surrogatepass") for line in head)
    if ctype.startswith("multipart") and depth < 2:
        parts = draw(st.lists(mime(depth + 1), max_size=3))
        boundary = draw(st.sampled_from([b"b1", b"b2", b""]))
        body = b"".join(newline + b"--" + boundary + newline + part for part in parts)
        body += draw(st.sampled_from([newline + b"--" + boundary + b"--" + newline, b"", newline + b"--b1--"]))
    else:
        body = draw(ARMOR | st.binary(max_size=40))
    return head_bytes + newline + newline + body


MAILS = mime() | st.binary(max_size=300) | mutated(mime().map(lambda b: b.decode("latin-1"))).map(
    lambda t: t.encode("latin-1", "replace"))


@FUZZ
@given(MAILS)
@example(b"Content-Type: multipart/signed; protocol*=idna''x\r\n\r\n--b1--\r\n")
def test_a_mail_is_sealed_or_rejected(raw):
    try:
        sealed = mailparse.seal_of(raw)
    except Rejected:
        pass
    else:
        assert sealed.kind in ("detached", "armored", "encrypted-mime")
    for name in ("Message-ID", "Auto-Submitted"):
        value = mailparse.header(raw, name)
        assert value is None or (value.isprintable() and len(value) <= 100)


@FUZZ
@given(MAILS)
def test_a_signed_entity_is_one_text_or_rejected(entity):
    try:
        text = mailparse.text_of_entity(entity)
    except Rejected:
        event("refused")
        return
    assert isinstance(text, str) and "\r" not in text


@FUZZ
@given(st.binary(max_size=200) | st.lists(ARMOR | st.sampled_from([b"\n", b" \r\n", b"text\n"]), max_size=4).map(b"".join))
def test_an_inline_text_is_one_block_or_rejected(body):
    try:
        sealed = mailparse.seal_of_text(body)
    except Rejected:
        event("refused")
        return
    assert sealed.kind == "armored" and sealed.armored.startswith(b"-----BEGIN PGP")
    try:
        text = mailparse.text_of_plain(body)
    except Rejected:
        event("refused")
        return
    assert "\r" not in text


COMMAND_WORDS = st.sampled_from(sorted(mailactions.GRAMMAR) + ["rm", "gqsub", "-s", "-f", "TERM", "9", "12",
                                                             "0012", "1" * 19, "$(id)", ";", "|"]) \
    | st.text(st.characters(categories=["Nd", "Zs", "Cc"]), min_size=1, max_size=3) | st.text(max_size=5)
MAILED = st.lists(st.lists(COMMAND_WORDS, max_size=4).map(" ".join), max_size=4).map("\n".join) \
    | st.text(max_size=40)


@FUZZ
@given(MAILED)
@example("gqdel \u0660")
def test_mailed_commands_are_fixed_argvs_of_the_grammar_or_rejected(text):
    try:
        action = mailactions.parse(text)
    except Rejected:
        event("refused")
        return
    if isinstance(action, mailactions.JobScript):
        assert text.startswith("#!")
        return
    assert 1 <= len(action.argvs) <= mailactions.MAX_COMMANDS
    for argv in action.argvs:
        words = list(argv)
        assert words[0] in mailactions.GRAMMAR
        if words[0] == "gqsig" and words[1:2] == ["-s"]:
            signal_word = words[2]
            assert signal_word.isascii() and signal_word.isalnum() or "+" in signal_word
            words = words[:1] + words[3:]
        # every other word is a job id as gsat's commands read one (ASCII digits)
        assert all(w.isascii() and w.isdigit() for w in words[1:]), argv

"""Every message kind that crosses a channel, and its JSON wire format.

A message is one JSON object (UTF-8, at most MAX_SIZE bytes):

    {"v": 1, "kind": "hold", "jobs": [42], "reply": "r.123.9f2c", "mid": "..."}

`kind` names a class below; its fields are the other keys.  Unknown keys are
ignored so that older and newer tools can talk; a mistyped field (a kind
that is not a string, a string that is not Unicode text: a lone surrogate
from a "\\udXXX" escape) makes the message bad, and so does JSON nested too
deep to parse: decode() refuses every malformed body with BadMessage and
nothing else, and bad messages are set aside by the receiver.  `reply`
names the answer path the client waits on (a FIFO name for the file
channel, the client's pid for SysV); None means "no answer".

An Answer goes back the same way: {"code": 0, "text": "...", "results":
{"42": [0, ""]}} with per-job codes from gsat.errors.

Messages are frozen records (gsat.record) with a TYPES table for checking
what arrives.  Stdlib only.
"""

import os

from gsat.errors import BadMessage, UsageError
from gsat import jsontext
from gsat.record import Record

VERSION = 1
MAX_SIZE = 65536
OPTIONAL_STR = "str?"


class Message(Record):
    kind = ""
    TYPES = {"reply": OPTIONAL_STR, "mid": str}
    FIELDS = {"reply": None, "mid": ""}


def _kind(name: str, doc: str = "", **fields) -> type:
    """A message class: fields given as name=(type, default)."""
    return type(name.title(), (Message,), {
        "kind": name, "__doc__": doc, "__slots__": (),
        "TYPES": {**Message.TYPES, **{k: t for k, (t, _) in fields.items()}},
        "FIELDS": {**Message.FIELDS, **{k: d for k, (_, d) in fields.items()}}})


JOBS = (list, [])
Submit = _kind("submit", "Jobs published under jobs/ that the controller should take on.", jobs=JOBS)
Delete = _kind("delete", jobs=JOBS)
Hold = _kind("hold", jobs=JOBS)
Release = _kind("release", jobs=JOBS)
Signal = _kind("signal", jobs=JOBS, signal=(int, 15))
Exited = _kind("exited", "Sent by an orphaned shepherd: run `run` of `job` has an exit record.",
               job=(int, 0), run=(int, 0))
Trigger = _kind("trigger", "A user event of a job; `wait`: answer after its services.",
                job=(int, 0), event=(str, ""), args=(list, []), wait=(bool, False))
Raw = _kind("raw", "sendcmd's text commands: ALIVE?, PID?, HOST?, STOP.", text=(str, ""))
Stop = _kind("stop", kill_jobs=(bool, False))


class Answer(Record):
    __slots__ = ()
    TYPES = {"code": int, "text": str, "results": dict, "mid": str}
    FIELDS = {"code": 0, "text": "", "results": {}, "mid": ""}


KINDS: dict[str, type] = {cls.kind: cls for cls in
                          (Submit, Delete, Hold, Release, Signal, Exited, Trigger, Raw, Stop)}
ITEM_TYPES = {"jobs": int, "args": str}


def new_mid() -> str:
    return os.urandom(8).hex()


def encode(msg: Message) -> bytes:
    body = {"v": VERSION, "kind": msg.kind, **msg.as_dict()}
    try:
        data = jsontext.dumps(body).encode()
    except UnicodeEncodeError as exc:  # argv bytes that are not UTF-8 come as lone surrogates
        word = exc.object[exc.start:exc.end].encode("utf-8", "surrogateescape")
        raise UsageError(f"a word holds bytes that are not UTF-8 ({word!r}); nothing was sent") from None
    if len(data) > MAX_SIZE:
        raise BadMessage(f"message of {len(data)} bytes exceeds {MAX_SIZE}")
    return data


def decode(data: bytes) -> Message:
    """Parse and type-check one message; BadMessage says why it is refused."""
    body = _load(data)
    kind = body.get("kind")
    cls = KINDS.get(kind) if isinstance(kind, str) else None  # a list or dict is not even hashable
    if cls is None:
        raise BadMessage(f"unknown command {kind!r}"[:200])
    return cls(**_fields(cls, body))


def encode_answer(answer: Answer) -> bytes:
    return jsontext.dumps(answer.as_dict()).encode() + b"\n"


def decode_answer(data: bytes) -> Answer:
    return Answer(**_fields(Answer, _load(data)))


def _load(data: bytes) -> dict:
    if len(data) > MAX_SIZE:
        raise BadMessage(f"oversized: {len(data)} bytes")
    try:
        body = jsontext.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadMessage("not valid UTF-8") from None
    except ValueError as exc:
        raise BadMessage(f"not valid JSON: {exc}") from None
    except RecursionError:  # the C scanner's answer to [[[[...: the bytes are short, the depth is not
        raise BadMessage("not valid JSON: nested too deep") from None
    if not isinstance(body, dict):
        raise BadMessage("not a JSON object")
    return body


def _fields(cls: type, body: dict) -> dict:
    out = {}
    for name, kind in cls.TYPES.items():
        if name in body:
            if not _is_a(body[name], kind, ITEM_TYPES.get(name)):
                raise BadMessage(f"field {name!r} has the wrong type")
            out[name] = body[name]
    return out


def _is_a(value, kind, item=None) -> bool:
    if kind == OPTIONAL_STR:
        return value is None or _is_text(value)
    if kind is str:
        return _is_text(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, list) and all(_is_a(v, item) for v in value) if item else isinstance(value, list)
    return isinstance(value, kind)


def _is_text(value) -> bool:
    """A str that can be written out again: JSON's "\\ud800" escapes give lone
    surrogates, which every encode() (the event log, a service's environment) refuses."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

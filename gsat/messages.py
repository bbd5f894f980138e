"""Every message kind that crosses a channel, and its JSON wire format.

A message is one JSON object (UTF-8, at most MAX_SIZE bytes):

    {"v": 1, "kind": "hold", "jobs": [42], "reply": "r.123.9f2c", "mid": "..."}

`kind` names a class below; its fields are the other keys.  Unknown keys are
ignored so that older and newer tools can talk; a missing or mistyped field
makes the message bad (BadMessage), and bad messages are set aside by the
receiver.  `reply` names the answer path the client waits on (a FIFO name
for the file channel, the client's pid for SysV); None means "no answer".

An Answer goes back the same way: {"code": 0, "text": "...", "results":
{"42": [0, ""]}} with per-job codes from gsat.errors.

Stdlib only.
"""

import dataclasses
import json
import os
import typing

from gsat.errors import BadMessage

VERSION = 1
MAX_SIZE = 65536


@dataclasses.dataclass(frozen=True)
class Message:
    kind: typing.ClassVar[str] = ""
    reply: str | None = None
    mid: str = ""


@dataclasses.dataclass(frozen=True)
class Submit(Message):
    """Jobs published under jobs/ that the controller should take on."""

    kind: typing.ClassVar[str] = "submit"
    jobs: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Delete(Message):
    kind: typing.ClassVar[str] = "delete"
    jobs: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Hold(Message):
    kind: typing.ClassVar[str] = "hold"
    jobs: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Release(Message):
    kind: typing.ClassVar[str] = "release"
    jobs: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Signal(Message):
    kind: typing.ClassVar[str] = "signal"
    jobs: list[int] = dataclasses.field(default_factory=list)
    signal: int = 15


@dataclasses.dataclass(frozen=True)
class Exited(Message):
    """Sent by an orphaned shepherd: run `run` of `job` has an exit record."""

    kind: typing.ClassVar[str] = "exited"
    job: int = 0
    run: int = 0


@dataclasses.dataclass(frozen=True)
class Trigger(Message):
    """A user event of a job (the `trigger` command); `wait`: answer after its services."""

    kind: typing.ClassVar[str] = "trigger"
    job: int = 0
    event: str = ""
    args: list[str] = dataclasses.field(default_factory=list)
    wait: bool = False


@dataclasses.dataclass(frozen=True)
class Raw(Message):
    """sendcmd's text commands: ALIVE?, PID?, HOST?, STOP."""

    kind: typing.ClassVar[str] = "raw"
    text: str = ""


@dataclasses.dataclass(frozen=True)
class Stop(Message):
    kind: typing.ClassVar[str] = "stop"
    kill_jobs: bool = False


@dataclasses.dataclass(frozen=True)
class Answer:
    code: int = 0
    text: str = ""
    results: dict[str, list] = dataclasses.field(default_factory=dict)
    mid: str = ""  # the request's mid, where the channel needs it (SysV)


KINDS: dict[str, type[Message]] = {
    cls.kind: cls for cls in (Submit, Delete, Hold, Release, Signal, Exited, Trigger, Raw, Stop)
}


def new_mid() -> str:
    return os.urandom(8).hex()


def encode(msg: Message) -> bytes:
    body = {"v": VERSION, "kind": msg.kind, **dataclasses.asdict(msg)}
    data = json.dumps(body, separators=(",", ":")).encode()
    if len(data) > MAX_SIZE:
        raise BadMessage(f"message of {len(data)} bytes exceeds {MAX_SIZE}")
    return data


def decode(data: bytes) -> Message:
    """Parse and type-check one message; BadMessage says why it is refused."""
    body = _load(data)
    kind = body.get("kind")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise BadMessage(f"unknown command {str(kind)[:40]!r}")
    return cls(**_fields(cls, body))


def encode_answer(answer: Answer) -> bytes:
    return json.dumps(dataclasses.asdict(answer), separators=(",", ":")).encode() + b"\n"


def decode_answer(data: bytes) -> Answer:
    body = _load(data)
    return Answer(**_fields(Answer, body))


def _load(data: bytes) -> dict:
    if len(data) > MAX_SIZE:
        raise BadMessage(f"oversized: {len(data)} bytes")
    try:
        body = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadMessage("not valid UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise BadMessage(f"not valid JSON: {str(exc)[:80]}") from None
    if not isinstance(body, dict):
        raise BadMessage("not a JSON object")
    return body


def _fields(cls: type, body: dict) -> dict:
    hints = typing.get_type_hints(cls)
    out = {}
    for field in dataclasses.fields(cls):
        if field.name in body:
            value = body[field.name]
            if not _is_a(value, hints[field.name]):
                raise BadMessage(f"field {field.name!r} has the wrong type")
            out[field.name] = value
    return out


def _is_a(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is getattr(__import__("types"), "UnionType", None):
        return any(_is_a(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_is_a(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)

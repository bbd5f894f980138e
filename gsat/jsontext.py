"""JSON writing without importing the json package.

`import json` pulls in json.decoder and with it `re` and `enum`, several
milliseconds of a command-line tool's start-up; writers need none of it.
dumps() produces what json.dumps(obj, separators=(",", ":"),
ensure_ascii=False, sort_keys=...) produces for dicts, lists, tuples, str,
int, float, bool and None, with the C string escaper json itself uses.
loads() drives the same C scanner json uses, through a minimal context;
every malformed document raises ValueError, as json.loads does.
"""

from _json import encode_basestring


def dumps(obj, sort_keys: bool = False) -> str:
    out: list[str] = []
    _write(obj, out, sort_keys)
    return "".join(out)


def _write(obj, out: list, sort_keys: bool) -> None:
    if isinstance(obj, str):
        out.append(encode_basestring(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        out.append(_float(obj))
    elif isinstance(obj, dict):
        out.append("{")
        items = sorted(obj.items()) if sort_keys else obj.items()
        for i, (key, value) in enumerate(items):
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__}")
            out.append(("," if i else "") + encode_basestring(key) + ":")
            _write(value, out, sort_keys)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            _write(value, out, sort_keys)
        out.append("]")
    else:
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _float(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(value)]
    return float.__repr__(value)


class _Context:
    """What _json's C scanner reads from json.JSONDecoder, nothing more."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


_scan = None


def loads(text: str | bytes):
    """Parse one JSON document (ValueError when it is not one)."""
    global _scan
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    if _scan is None:
        from _json import make_scanner
        _scan = make_scanner(_Context())
    start = len(text) - len(text.lstrip(" \t\n\r"))
    try:
        value, end = _scan(text, start)
    except StopIteration as exc:
        raise ValueError(f"not JSON at offset {exc.value}") from None
    except SystemError:
        # Python 3.11's scanner builds its error from json.decoder, looked up
        # in sys.modules only: where json was never imported (the point of
        # this module), it returns NULL without an exception set
        raise ValueError("not JSON") from None
    if text[end:].strip(" \t\n\r"):
        raise ValueError(f"extra data at offset {end}")
    return value

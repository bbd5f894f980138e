"""The pieces that keep the command-line tools lean behave like what they
replace: jsontext like json, options like a getopt parser, Record like a
frozen dataclass; and gqsub really does not import what it avoids."""

import json
import random
import string
import subprocess
import sys

import pytest

from gsat import jsontext, options
from gsat.errors import UsageError
from gsat.messages import Hold
from gsat.record import Record

pytestmark = pytest.mark.timeout(60)


def random_value(rnd, depth=0):
    kind = rnd.randint(0, 6 if depth < 3 else 4)
    if kind == 0:
        return rnd.randint(-10**15, 10**15)
    if kind == 1:
        return rnd.random() * 10 ** rnd.randint(-8, 8)
    if kind == 2:
        return "".join(rnd.choice(string.printable + "éü☃\x00\x1f\"\\\u2028") for _ in range(rnd.randint(0, 12)))
    if kind in (3, 4):
        return rnd.choice([None, True, False, "", 0])
    if kind == 5:
        return [random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return {"".join(rnd.choice(string.ascii_letters) for _ in range(3)): random_value(rnd, depth + 1)
            for _ in range(rnd.randint(0, 4))}


def test_jsontext_writes_what_json_writes_and_reads_it_back():
    rnd = random.Random(7)
    for _ in range(2000):
        value = random_value(rnd)
        for sort_keys in (False, True):
            text = jsontext.dumps(value, sort_keys=sort_keys)
            assert text == json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
            assert jsontext.loads(text) == json.loads(text)


@pytest.mark.parametrize("bad", ["", "{", '{"a":1} x', "[1,]", "{'a': 1}", "nul"])
def test_jsontext_refuses_what_json_refuses(bad):
    with pytest.raises(ValueError):
        json.loads(bad)
    with pytest.raises(ValueError):
        jsontext.loads(bad)


def test_options_parse_like_getopt():
    opts, rest = options.parse(["-Nname", "-HV", "--on", "a=b", "--on=c=d", "-v", "X", "s.sh", "-q", "h"])
    assert opts == {"name": "name", "hold": True, "export_all": True, "on": ["a=b", "c=d"],
                    "variables": ["X"], "host": "h"}
    assert rest == ["s.sh"]
    assert options.parse(["-N", "x", "--", "-q"])[1] == ["-q"]
    assert options.parse(["--job", "5", "ev", "-x"], (( ("--job",), "job", "value", "ID", ""),),
                         interspersed=False) == ({"job": "5"}, ["ev", "-x"])
    for bad in (["-Z"], ["--nope"], ["-N"], ["-HZ"]):
        with pytest.raises(UsageError):
            options.parse(bad)


def test_records_are_frozen_values_unless_told_otherwise():
    class Point(Record):
        __slots__ = ()
        FIELDS = {"x": 0, "tags": []}
    a, b = Point(x=1), Point(x=1)
    assert a == b and a != Point(x=2) and a.replace(x=3).x == 3 and a.tags is not b.tags
    with pytest.raises(AttributeError):
        a.x = 5
    with pytest.raises(TypeError):
        Point(y=1)
    assert Hold(jobs=[1]) == Hold(jobs=[1], reply=None, mid="")


def test_gqsub_imports_none_of_what_it_avoids():
    code = ("import sys, gsat.cli.gqsub as m; "
            "print(','.join(x for x in ('argparse', 'dataclasses', 'json', 'logging', 'pathlib', 'yaml',"
            " 'psutil', 'gnupg', 'subprocess', 'shlex', 'typing') if x in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def mutations(rnd, text: str):
    """Truncations and one-character edits of a valid JSON text."""
    yield from (text[:i] for i in range(len(text)))
    for _ in range(60):
        i = rnd.randrange(len(text) + 1)
        c = rnd.choice('{}[],:"\\ 0123456789-+.eEtfnulrsaNI\x00\x1f\u00e9\ud800')
        yield text[:i] + c + text[i:]            # inserted
        yield text[:i] + c + text[i + 1:]        # replaced
        yield text[:i] + text[i + 1:]            # deleted


def test_jsontext_refuses_with_value_error_all_json_refuses_in_a_process_without_json():
    """The scanner's own errors need json.decoder, which the tools never import:
    checked in a fresh interpreter, over truncations and mutations of valid texts."""
    rnd = random.Random(11)
    cases = []
    for _ in range(120):
        cases += mutations(rnd, jsontext.dumps(random_value(rnd)))
    cases += ['{"a": "x', '[1 2]', '{"a" 1}', '"\\u12"', '"\\q"', '[1,2', '{"a":1,}', '"a\nb"', " ", "01"]
    expected = []
    for case in cases:
        try:
            expected.append(repr(json.loads(case)))
        except ValueError:
            expected.append("ValueError")
    code = ("import sys; from gsat import jsontext\n"
            "cases = eval(sys.stdin.read())\n"
            "for case in cases:\n"
            "    try:\n"
            "        print(repr(jsontext.loads(case)))\n"
            "    except ValueError:\n"
            "        print('ValueError')\n"
            "    except Exception as exc:\n"
            "        print(type(exc).__name__)\n"
            "assert 'json.decoder' not in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], input=repr(cases), capture_output=True, text=True,
                         check=True)
    got = out.stdout.splitlines()
    assert len(got) == len(cases)
    wrong = [(c, e, g) for c, e, g in zip(cases, expected, got) if e != g]
    assert not wrong, wrong[:5]

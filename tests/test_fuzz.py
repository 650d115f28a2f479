"""A bounded property-based fuzz run: `decode` and `--where` never end in exit 70.

Generated inputs: random bytes, pickle opcode soups (allowed and hostile globals,
DUP / memo / REDUCE / NEWOBJ, big ints and lengths), JSON texts nested or not,
kombu envelopes around them; ``--where`` token soups from the language's own
vocabulary.  Each case must end in a documented exit code, in bounded time, and
the whole run in bounded memory.  Derandomized, so the suite is repeatable; the
case counts are sized for about 12 s on an idle machine.
"""

from __future__ import annotations

import base64
import json
import resource
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DECODE_CASES = 1100
WHERE_CASES = 1200
WHERE_CLI_CASES = 120
CASE_SECONDS = 3.0
GROWTH_MB = 300

COUNTS: dict[str, int] = {}
FUZZ = settings(deadline=None, database=None, derandomize=True, print_blob=True,
                suppress_health_check=list(HealthCheck))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- inputs for decode ---------------------------------------------------------------------

GLOBALS = [b"builtins\nbytearray\n", b"builtins\nbytes\n", b"builtins\nset\n", b"builtins\nfrozenset\n",
           b"builtins\ncomplex\n", b"os\nsystem\n", b"datetime\ndatetime\n", b"decimal\nDecimal\n",
           b"collections\nOrderedDict\n", b"copyreg\n_reconstructor\n", b"_codecs\nencode\n",
           b"uuid\nUUID\n", b"builtins\nobject\n", b"__builtin__\nset\n"]


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


OPCODE = st.one_of(
    st.sampled_from([b"]", b")", b"}", b"N", b"\x88", b"\x89", b"2", b"2", b"2", b"\x85", b"\x86", b"\x86",
                     b"\x87", b"a", b"e", b"(", b"t", b"l", b"d", b"s", b"u", b"R", b"\x81", b"b", b"0",
                     b"1", b"\x94", b"\x8f", b"\x90", b"\x91", b"K\x05", b"K\xff", b"h\x00", b"h\x01",
                     b"q\x00", b"q\x01", b"g0\n", b"p0\n", b"I12\n", b"L99999999999999999999L\n",
                     b"F1e308\n", b"X\x03\x00\x00\x00abc", b"C\x02\x00\xff", b"\x8c\x01x", b"\x95\x00\x00\x00\x00\x00\x00\x00\x00"]),
    st.integers(0, 2**32 - 1).map(lambda n: b"J" + _u32(n)),
    st.integers(0, 2**32 - 1).map(lambda n: b"r" + _u32(n)),
    st.integers(0, 2**32 - 1).map(lambda n: b"j" + _u32(n)),
    st.integers(0, 4000).map(lambda n: b"\x8b" + _u32(n) + b"\x7f" * n),  # LONG4: up to 32,000 bits
    st.integers(0, 2**32 - 1).map(lambda n: b"B" + _u32(n) + b"xy"),  # BINBYTES claiming any length
    st.sampled_from(GLOBALS).map(lambda g: b"c" + g),
    st.sampled_from([b"builtins", b"os", b"datetime"]).flatmap(
        lambda m: st.sampled_from([b"bytearray", b"system", b"datetime"]).map(
            lambda n: b"\x8c" + bytes([len(m)]) + m + b"\x8c" + bytes([len(n)]) + n + b"\x93")),
)
PICKLE_SOUP = st.tuples(st.sampled_from([b"", b"\x80\x02", b"\x80\x04", b"\x80\x05"]),
                        st.lists(OPCODE, max_size=60),
                        st.sampled_from([b".", b"", b"N."])).map(lambda t: t[0] + b"".join(t[1]) + t[2])

JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
    max_leaves=30)
JSON_TEXT = st.one_of(
    JSON_VALUE.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.integers(4000, 6000).map(lambda n: b"[" + b"9" * n + b"]"),
    st.binary(max_size=40).map(lambda b: b"[" + b + b"]"),
)
BODY = st.one_of(st.binary(max_size=200), PICKLE_SOUP, JSON_TEXT)
CONTENT_TYPE = st.sampled_from(["application/json", "application/x-python-serialize", "application/x-yaml",
                                "application/x-msgpack", "text/plain", "", "application/data"])


@st.composite
def envelopes(draw) -> bytes:
    body = draw(BODY)
    headers = draw(st.one_of(st.just({"task": "t", "id": "i"}), st.just({}), JSON_VALUE))
    env = {"body": base64.b64encode(body).decode(), "content-type": draw(CONTENT_TYPE),
           "content-encoding": draw(st.sampled_from(["utf-8", "binary", "latin-1", "nonsense"])),
           "headers": headers, "properties": {"body_encoding": "base64"}}
    text = json.dumps(env).encode()
    if draw(st.booleans()):  # an unacked entry: [envelope, exchange, routing_key]
        text = b"[" + text + b', "", "celery"]'
    return text


DECODE_INPUT = st.tuples(
    st.one_of(BODY, envelopes(), BODY.map(base64.b64encode)),
    st.sampled_from([None, "json", "pickle", "yaml", "msgpack"]),
)


def _check(r, ok: set[int], what: str, started: float) -> None:
    assert r.exit_code in ok, (what, r)
    assert "internal error" not in r.stderr, (what, r)
    assert time.monotonic() - started < CASE_SECONDS, (what, time.monotonic() - started)


def test_fuzz_decode(run):
    start_rss = _rss_mb()

    @settings(FUZZ, max_examples=DECODE_CASES)
    @given(DECODE_INPUT)
    def case(given_input):
        data, content_type = given_input
        COUNTS["decode"] = COUNTS.get("decode", 0) + 1
        args = ["decode", "-o", "json"] + (["--content-type", content_type] if content_type else [])
        started = time.monotonic()
        r = run(*args, input=data)
        _check(r, {0, 65} if data.strip() else {2}, repr(data[:200]), started)
        if r.exit_code != 2:
            json.loads(r.stdout)  # the output is valid JSON whatever came in

    case()
    assert COUNTS["decode"] >= DECODE_CASES // 2
    assert _rss_mb() - start_rss < GROWTH_MB


# --- inputs for --where ----------------------------------------------------------------------

WORDS = ["id", "task", "args", "kwargs", "headers", "size", "eta", "retries", "queue", "error", "embed",
         "and", "or", "not", "true", "false", "null", "(", ")", "[", "]", ".", "==", "!=", "<", "<=", ">",
         ">=", "=", "'x'", '"y"', "'\\x'", "'", '"', "0", "-1", "1.5", "1e999", "9" * 120, "nosuch"]
TOKEN = st.one_of(st.sampled_from(WORDS), st.integers().map(str), st.text(max_size=4))
WHERE_TEXT = st.one_of(
    st.lists(TOKEN, min_size=1, max_size=40).map(" ".join),
    st.lists(TOKEN, min_size=1, max_size=40).map("".join),
    st.tuples(st.integers(1, 400), st.sampled_from(["(", "not ", "not ("])).map(lambda t: t[1] * t[0] + "id"),
    st.tuples(st.integers(1, 1200), st.sampled_from([" and ", " or "])).map(lambda t: t[1].join(["id"] * t[0])),
)


def _messages():
    import pickle

    from celerytool.codecs.message import decode_payload

    bodies = [
        (json.dumps([[1, "a", {"k": [1, 2]}], {"x": None}, {}]).encode(), "application/json"),
        (pickle.dumps(((10**100, b"\x00", {1, 2}), {"k": 1.5}, {}), 2), "application/x-python-serialize"),
        (b"\x80\x02]" + b"2\x86" * 40 + b"\x85}}\x87.", "application/x-python-serialize"),
        (b"[" * 5000 + b"]" * 5000, "application/json"),
    ]
    return [decode_payload(body, ct, "binary" if "python" in ct else "utf-8", {"task": "t", "id": str(i)}, {})
            for i, (body, ct) in enumerate(bodies)]


def test_fuzz_where_parse_and_evaluate():
    from celerytool.errors import UsageError
    from celerytool.selection import MessageView, Selection

    views = [MessageView(m) for m in _messages()]
    start_rss = _rss_mb()

    @settings(FUZZ, max_examples=WHERE_CASES)
    @given(WHERE_TEXT)
    def case(text):
        COUNTS["where"] = COUNTS.get("where", 0) + 1
        started = time.monotonic()
        try:
            selection = Selection.build(where=text)
        except UsageError as exc:
            assert "--where" in str(exc) and "^" in str(exc), exc
            return
        for view in views:
            selection.matches(view)
        assert time.monotonic() - started < CASE_SECONDS

    case()
    assert COUNTS["where"] >= WHERE_CASES // 2
    assert _rss_mb() - start_rss < GROWTH_MB


def test_fuzz_where_through_peek(run, redis_url, celery_app):
    celery_app.send_task("tasks.a", args=[1, "x"], kwargs={"k": [1, 2]}, task_id="a")

    @settings(FUZZ, max_examples=WHERE_CLI_CASES)
    @given(WHERE_TEXT)
    def case(text):
        COUNTS["where-cli"] = COUNTS.get("where-cli", 0) + 1
        started = time.monotonic()
        r = run("peek", "celery", "-b", redis_url, "-o", "json", "--where", text)
        _check(r, {0, 2}, text[:200], started)

    case()


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print(f"\nfuzz cases run: {COUNTS}")

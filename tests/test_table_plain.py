"""Tables written without rich are the text rich itself writes (to a non-terminal)."""

from __future__ import annotations

import io
import random

import pytest

from celerytool.model import Binding, Message, QueueInfo
from celerytool.render import table


def render(rows, kind, *, use_rich):
    out = io.StringIO()
    if use_rich:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(table, "plain_lines", lambda *a: None)
            table.render_table(rows, kind, out)
    else:
        table.render_table(rows, kind, out)
    return out.getvalue()


def words(rng, n=12):
    alphabet = "abcxyz0129 .:-_/[]{}\"'"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, n)))


def sample(kind, rng):
    if kind == "queue":
        return [QueueInfo(name=words(rng) or "q", messages=rng.choice([0, 7, 123456789]),
                          priorities={"0": rng.randint(0, 9), "3": rng.choice([0, 42])},
                          unacked=rng.choice([None, 3]), type=rng.choice([None, "quorum"]))
                for _ in range(rng.randint(1, 6))]
    if kind == "binding":
        return [Binding(exchange=rng.choice(["", "celery", words(rng)]), routing_key=words(rng),
                        pattern=words(rng, 3), queue=words(rng) or "q") for _ in range(rng.randint(1, 6))]
    return [Message(queue="celery", position=i, priority=rng.choice([None, 0, 9]), id=words(rng, 36),
                    task=words(rng), args=[i, words(rng)], kwargs={"k": words(rng, 4)},
                    eta=rng.choice([None, "2024-01-02T03:04:05+00:00"]), retries=rng.choice([None, 0, 12]),
                    error=rng.choice([None, None, "body is not valid JSON"]))
            for i in range(rng.randint(1, 6))]


@pytest.mark.parametrize("kind", ["queue", "binding", "message"])
@pytest.mark.parametrize("seed", range(15))
def test_plain_tables_equal_rich_tables(kind, seed, monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    rows = sample(kind, random.Random(seed))
    plain = render(rows, kind, use_rich=False)
    assert plain == render(rows, kind, use_rich=True)
    assert plain.count("\n") == len(rows) + 1


def test_rich_still_renders_what_plain_text_cannot(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    kept = table._drop_empty(table.COLUMNS["binding"], [Binding("ex", "rk", "#", "q" * 50)])
    assert table.plain_lines(kept, 1, 40) is None  # too wide: rich folds it
    kept = table._drop_empty(table.COLUMNS["binding"], [Binding("ex", "rk", "#", "quéue")])
    assert table.plain_lines(kept, 1, 200) is None  # not ASCII: rich measures cells
    rows = [Binding("ex", "rk", "#", "q" * 50)]
    text = render(rows, "binding", use_rich=False)
    assert text == render(rows, "binding", use_rich=True)
    assert max(len(line) for line in text.splitlines()) <= 40

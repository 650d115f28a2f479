"""beat's direct psycopg connection: the arguments SQLAlchemy's psycopg dialect would give."""

from __future__ import annotations

import pytest

from celerytool.backends.sql import session_args
from celerytool.backends.sql_link import psycopg_args
from celerytool.urls import parse_url

URLS = [
    "db+postgresql://postgres@127.0.0.1:5432/celery",
    "db+postgresql://user:p%40ss%3Aw%2Frd@db.example:6432/results",
    "db+postgresql://user:@localhost/db",  # an empty password is left out
    "db+postgresql+psycopg://u:pw@[::1]:5433/d",
    "db+postgresql:///celery",  # no host: the socket
    "db+postgres://u@h/d?sslmode=require&target_session_attrs=read-write",
    "db+postgresql://u@h/d?sslmode=",  # a blank value is left out
    "django-db+postgresql://u:p@h:1/d%20b",
]


@pytest.mark.parametrize("raw", URLS)
def test_psycopg_args_are_sqlalchemys(raw):
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
    from sqlalchemy.engine import make_url

    url = parse_url(raw)
    ours = psycopg_args(url, 5.0)
    assert ours is not None, raw
    _, theirs = PGDialect_psycopg().create_connect_args(make_url(url.sqlalchemy_url))
    assert ours == {**theirs, **session_args("postgresql", "psycopg", 5.0)}


@pytest.mark.parametrize("raw", [
    "db+postgresql+psycopg2://u@h/d",  # another driver
    "db+postgresql://u@h1,h2/d",  # several hosts
    "db+postgresql://u@/d?host=/tmp",  # host in the query
    "db+mysql://u@h/d",
    "db+sqlite:///x.db",
])
def test_other_urls_go_through_sqlalchemy(raw):
    assert psycopg_args(parse_url(raw), 5.0) is None

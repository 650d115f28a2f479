"""Fixtures: a private real redis-server, a Celery app that produces real messages,
and a CLI runner."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from services import start_redis  # noqa: E402

os.environ.setdefault("C_FORCE_ROOT", "1")
for var in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERYTOOL_OUTPUT", "CELERYTOOL_PROFILE",
            "CELERYTOOL_MASTER_NAME", "CELERYTOOL_SENTINEL_PASSWORD",
            # the runner's terminal width (pytest-xdist sets COLUMNS=80): tests that need one set it
            "COLUMNS", "LINES"):
    os.environ.pop(var, None)
# no profile of the person running the tests applies (tests that want one set their own)
os.environ["CELERYTOOL_CONFIG"] = os.path.join(os.path.dirname(__file__), "no-such-config.toml")
# the runner's terminal type: the tests on a pseudo-terminal (progress bars, top) draw as on an
# xterm, also when the suite runs under TERM=dumb (an editor's shell, some CI runners) or none
os.environ["TERM"] = "xterm"
# started in the background by a non-interactive shell (`nohup bash scripts/test.sh &`, some CI
# runners), the suite inherits SIGINT ignored, and so would every command the tests interrupt
# with Ctrl-C: a handler here is reset to the default in the children
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


def clean_db_url(server, db: int) -> str:
    """Flush one database of the private server (not the others) and return its URL."""
    import redis

    client = redis.Redis(port=server.port, db=db)
    client.flushdb()
    client.close()
    return server.url(db)


@pytest.fixture
def redis_url(redis_server):
    """A clean database on the private server, for one test."""
    import redis

    client = redis.Redis(port=redis_server.port)
    client.flushall()
    client.close()
    return redis_server.url(0)


@pytest.fixture
def redis_client(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def make_app(broker: str, backend: str | None = None, **conf):
    from celery import Celery

    app = Celery("celerytool_tests", broker=broker, backend=backend or broker, set_as_current=False)
    app.conf.update(
        accept_content=["json", "pickle", "msgpack", "yaml"],
        result_accept_content=["json", "pickle", "msgpack", "yaml"],
        broker_connection_retry_on_startup=False,
        broker_connection_max_retries=1,
        **conf,
    )
    return app


@pytest.fixture
def celery_app(redis_url):
    app = make_app(redis_url)
    yield app
    app.close()


class Result:
    def __init__(self, r):
        self.exit_code = r.exit_code
        self.stdout = r.stdout
        self.stderr = r.stderr
        self.exception = r.exception

    def json(self):
        import json

        return json.loads(self.stdout)

    def ndjson(self):
        import json

        return [json.loads(line) for line in self.stdout.split("\n") if line.strip()]

    def __repr__(self):
        return f"<Result exit={self.exit_code} stdout={self.stdout[:500]!r} stderr={self.stderr[-500:]!r}>"


@pytest.fixture
def run():
    """Run celerytool in-process: run('peek', 'celery', '-b', url) -> Result."""
    from celerytool.cli import cli

    def _run(*args, input=None, env=None):
        runner = CliRunner()
        r = runner.invoke(cli, [str(a) for a in args], input=input, env=env, catch_exceptions=True)
        if r.exception and not isinstance(r.exception, SystemExit):
            raise r.exception
        return Result(r)

    return _run


# --- RabbitMQ: a vhost of our own for the session, emptied before each test ------------
# Every test that takes ``rabbit_vhost`` / ``amqp_url`` / ``pika_channel`` / ``amqp_celery_app``
# runs twice: on the machine's RabbitMQ 3.x (id ``rabbit3``, 5672 / 15672) and on the
# RabbitMQ 4.0.x node of tests/rabbit4.py (id ``rabbit4``, 5673 / 15673), each session in a
# vhost of its own per node.  ``rabbit_node`` is the node of the current test; ``rabbit4`` is
# the 4.x node for tests that only make sense there.  If the 4.x node cannot be built or
# started, the rabbit4 tests error (never skip).

RABBIT_NODE_IDS = ["rabbit3", "rabbit4"]


def rabbit_node_named(name: str):
    from services import RABBIT3

    if name == "rabbit3":
        return RABBIT3
    from rabbit4 import RABBIT4

    return RABBIT4


@pytest.fixture(scope="session")
def rabbit4():
    """The RabbitMQ 4.0.x node (services.RabbitNode), built / started once for all sessions."""
    from rabbit4 import ensure_rabbit4

    return ensure_rabbit4()


@pytest.fixture(scope="session", params=RABBIT_NODE_IDS)
def rabbit_vhost(request):
    from services import new_vhost

    vhost = new_vhost(node=rabbit_node_named(request.param))
    yield vhost
    vhost.delete()


@pytest.fixture
def rabbit_node(rabbit_vhost):
    return rabbit_vhost.node


@pytest.fixture
def amqp_url(rabbit_vhost):
    """amqp:// URL of the session vhost, with no queues (or policies) left from earlier tests."""
    from kombu import pools

    # kombu's global producer pools remember which queues they declared: forget the deleted ones
    pools.reset()
    rabbit_vhost.delete_queues()
    rabbit_vhost.delete_policies()
    return rabbit_vhost.url()


@pytest.fixture
def pika_channel(amqp_url):
    """A plain pika channel on the test vhost, to set up and check independently of celerytool."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    yield conn.channel()
    if conn.is_open:
        conn.close()


@pytest.fixture
def amqp_celery_app(amqp_url):
    """A Celery app producing onto the test vhost (no result backend). Its publishes wait for
    RabbitMQ's confirm, so what a test sent is in the queue before the command under test runs
    (without it, a command on another connection can find the queue still empty)."""
    app = make_app(amqp_url, backend="disabled://", broker_transport_options={"confirm_publish": True})
    yield app
    app.close()


# --- markers: `pytest -m "not services"` runs what needs no server (seconds, nothing installed) ---
SERVICE_FIXTURES = {"redis_server", "rabbit_vhost", "rabbit4", "rabbit_node"}
SERVICE_HELPERS = ("services", "sqlservices", "workers", "cluster", "rabbit4", "amqp_helpers",
                   "metrics_helpers", "msgfactory")


def _starts_services(module) -> bool:
    """A test module that imports a helper which starts or reaches a server."""
    import re

    source = Path(module.__file__).read_text(encoding="utf-8")
    names = "|".join(SERVICE_HELPERS)
    return bool(re.search(rf"^\s*(from ({names}) import|import ({names})\b)", source, re.M))


def pytest_configure(config):
    config.addinivalue_line("markers", "services: needs a real server (Redis, RabbitMQ, SQL, a worker); "
                                       "set automatically from the fixtures and helpers a test uses")


def pytest_collection_modifyitems(config, items):
    seen: dict[str, bool] = {}
    for item in items:
        module = item.module
        if module.__name__ not in seen:
            seen[module.__name__] = _starts_services(module)
        if seen[module.__name__] or SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)

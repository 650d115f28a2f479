"""celerytool metrics: one Prometheus / OpenMetrics exposition, or served with the event stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import (
    Converted,
    Duration,
    queue_option,
    timeout_option,
    with_app,
)

if TYPE_CHECKING:
    from types import FrameType

    from prometheus_client import CollectorRegistry

    from celerytool.brokers.base import Broker
    from celerytool.cli.app import App
    from celerytool.control.events import EventStream
    from celerytool.control.session import ControlSession
    from celerytool.metrics.broker import BrokerCollector
    from celerytool.metrics.events import EventMetrics

RESERVED_LABELS = {"queue_name", "name", "hostname", "exception", "priority", "type", "le", "quantile"}


def _buckets(value: str) -> tuple[float, ...]:
    try:
        bounds = sorted({float(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise click.BadParameter("give seconds separated by commas, e.g. 0.1,0.5,1,5,30") from None
    if not bounds or any(b != b or b <= 0 or b == float("inf") for b in bounds):
        raise click.BadParameter("give positive finite seconds, e.g. 0.1,0.5,1,5,30")
    return tuple(bounds)


def _static_label(value: str) -> tuple[str, str]:
    from celerytool.metrics.labels import check_label_name

    key, sep, text = value.partition("=")
    if not sep or not check_label_name(key):
        raise click.BadParameter(f"{value!r}: give KEY=VALUE with KEY a Prometheus label name")
    if key in RESERVED_LABELS:
        raise click.BadParameter(f"{key!r} is a label celerytool sets itself")
    return key, text


def _address(value: str) -> tuple[str, int]:
    from celerytool.metrics.serve import parse_address

    try:
        return parse_address(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: give [HOST:]PORT, e.g. 9808 or 0.0.0.0:9808") from None


@click.command("metrics")
@click.option("--serve", "serve", type=Converted("address", _address), is_flag=False,
              flag_value="127.0.0.1:9808", default=None, metavar="[HOST:]PORT",
              help="Serve /metrics and /health over HTTP and follow the event stream between scrapes "
                   "[--serve alone: 127.0.0.1:9808].")
@timeout_option(None, "--serve: stop serving after this long (exit 0).")
@queue_option("Also report QUEUE, even when no binding names it; repeatable.", celery_spelling=True,
              multiple=True, shell_complete=complete_queues)
@click.option("--internal", "include_internal", is_flag=True,
              help="Include Celery's own remote-control (*.pidbox) and event (celeryev.*) queues.")
@click.option("--scan/--no-scan", default=None,
              help="Redis: also find queues that hold messages but have no binding [default: when the "
                   "database has at most 200,000 keys].")
@click.option("--exact/--sampled", "exact", default=None,
              help="RabbitMQ: count by passive declare, or take the management API's last sample "
                   "[default: exact for at most 50 queues].")
@click.option("--delayed", is_flag=True,
              help="Also count tasks waiting for their ETA / countdown by queue (celery_queue_delayed): "
                   "reads kombu's unacked hash (Redis) or RabbitMQ's delayed-delivery levels each scrape.")
@click.option("--worker-timeout", type=Duration(1, 86400), default="60s", show_default=True,
              help="celery_worker_up drops to 0 this long after a worker's last heartbeat.")
@click.option("--forget-workers-after", type=Duration(1, 30 * 86400), default="10m", show_default=True,
              help="Remove every series of a worker not heard from for this long.")
@click.option("--buckets", type=Converted("buckets", _buckets), metavar="S,S,...",
              help="Histogram buckets in seconds for run time and queue wait [default: Prometheus' "
                   "0.005 .. 10].")
@click.option("--max-tasks", type=click.IntRange(min=1), default=200, metavar="N", show_default=True,
              help="Task names kept as label values; later ones are counted as 'other'.")
@click.option("--max-workers", type=click.IntRange(min=1), default=100, metavar="N", show_default=True,
              help="Worker label values kept; later ones are counted as 'other'.")
@click.option("--worker-label", type=click.Choice(["name", "host"]), default="name", show_default=True,
              help="hostname label: the worker's name (celery@host) or only its host.")
@click.option("--static-label", "static_labels", type=Converted("label", _static_label), multiple=True,
              metavar="KEY=VALUE", help="Add this label to every series; repeatable.")
@click.option("--prefix", default="celery_", show_default=True, help="Metric name prefix.")
@click.option("--openmetrics", is_flag=True,
              help="Print the OpenMetrics text format (default: the Prometheus text format, which "
                   "node_exporter's textfile collector reads). --serve negotiates it per scrape.")
@click.option("--enable", is_flag=True,
              help="--serve: first ask every worker to send task events (for workers started without -E).")
@with_app
def command(app, serve, timeout, queue, include_internal, scan, exact, delayed, worker_timeout, forget_workers_after,
            buckets, max_tasks, max_workers, worker_label, static_labels, prefix, openmetrics, enable):
    """Metrics for Prometheus: queue depths from the broker itself, workers and
    tasks from the event stream.

    Without --serve: one exposition of the broker metrics (queue length,
    by priority, unacked, consumers, celery_broker_up) on stdout, then exit
    (for node_exporter's textfile collector or cron); exit 69 after printing
    celery_broker_up 0 when the broker is unreachable. With --serve: an HTTP
    server with /metrics (the broker read at each scrape, plus worker and
    task metrics from events: start workers with -E, or use --enable) and
    /health (200 when the broker answers, else 503). Names and labels follow
    celery-exporter's (queue_name, name, hostname) so its dashboards work;
    with --backend, also results stored and stored without a TTL;
    `celerytool help metrics` lists every metric.

    \b
    Examples:
      celerytool metrics -b redis://cache:6379/0 > /var/lib/node_exporter/celery.prom
      celerytool metrics --serve 0.0.0.0:9808 --worker-label host --static-label env=prod
      celerytool metrics --serve -Q reports --buckets 0.1,1,10,60,600 --max-tasks 50
    """
    from prometheus_client import CollectorRegistry

    from celerytool.metrics.broker import BrokerCollector, BrokerConfig
    from celerytool.metrics.labels import check_prefix

    if not check_prefix(prefix):
        from celerytool.errors import UsageError

        raise UsageError(f"--prefix {prefix!r}: letters, digits, _ and : only, not starting with a digit")
    static = dict(static_labels)
    warn = _once()
    broker_options = app.broker_options(include_internal=include_internal)

    def open_broker() -> Broker:
        from celerytool.brokers import open_broker as open_

        return open_(app.broker_url, broker_options)

    registry = CollectorRegistry(auto_describe=False)
    broker = BrokerCollector(open_broker, BrokerConfig(prefix, static, tuple(queue), scan, exact, delayed), warn)
    registry.register(broker)
    app.track(_Closing(broker))
    if app.backend:  # opt-in: only when a result backend is named (--backend or a profile)
        from celerytool.metrics.results import ResultsCollector

        results = ResultsCollector(lambda: app.open_backend(), prefix, static, warn)
        registry.register(results)
        app.track(results)
    if serve is None:
        return _once_out(registry, broker, openmetrics)
    from celerytool.metrics.events import DEFAULT_BUCKETS, EventConfig, EventMetrics

    events = EventMetrics(EventConfig(prefix, static, buckets or DEFAULT_BUCKETS, max_tasks, max_workers,
                                      worker_label, worker_timeout, forget_workers_after))
    registry.register(events)
    return _serve(app, registry, broker, events, serve, timeout, enable, warn)


class _Closing:
    """Closes the collector's broker when the command ends (App.track)."""

    warnings: list[str] = []

    def __init__(self, collector: BrokerCollector) -> None:
        self.collector = collector

    def close(self) -> None:
        broker = self.collector.broker
        if broker is not None:
            broker.close()


def _once() -> Callable[[str], None]:
    from celerytool.render import warn

    said: set[str] = set()

    def say(text: str) -> None:
        if text not in said and len(said) < 1000:
            said.add(text)
            warn(text)

    return say


def _once_out(registry: CollectorRegistry, broker: BrokerCollector, openmetrics: bool) -> int:
    import sys

    from prometheus_client import generate_latest as plain
    from prometheus_client.openmetrics.exposition import generate_latest as open_metrics

    sys.stdout.write((open_metrics if openmetrics else plain)(registry).decode())
    sys.stdout.flush()
    if broker.last_error:
        from celerytool.errors import BrokerUnavailable

        raise BrokerUnavailable(broker.last_error)
    return 0


def _serve(app: App, registry: CollectorRegistry, broker: BrokerCollector, events: EventMetrics,
           address: tuple[str, int], timeout: float | None, enable: bool, warn: Callable[[str], None]) -> int:
    import signal
    import threading

    from celerytool.control.events import EventStream, enable_events
    from celerytool.control.session import ControlOptions, ControlSession
    from celerytool.metrics.serve import Server, follow, wsgi_app
    from celerytool.render import note

    server = Server(wsgi_app(registry, broker.health), *address)
    stop = threading.Event()
    state: dict[str, Any] = {"up": None}

    def open_stream() -> tuple[ControlSession, EventStream]:
        session = ControlSession(app.broker_url, ControlOptions.of(app.broker_options()))
        return session, EventStream(session)

    def report(up: bool, reason: str) -> None:
        if up != state["up"]:
            note("reading the event stream" if up else f"event stream lost ({reason}); retrying")
        state["up"] = up

    def first(session: ControlSession) -> None:
        if enable:
            agreed, failed = enable_events(session)
            note(f"asked every worker to send task events: {len(agreed)} agreed")
            for name, error in sorted(failed.items()):
                note(f"{name}: {error}")
        for text in session.warnings:
            warn(text)
        session.warnings.clear()

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    timer = threading.Timer(timeout, stop.set) if timeout else None
    server.start()
    host, port = str(server.address[0]), server.address[1]
    shown = f"[{host}]" if ":" in host else host
    note(f"serving http://{shown}:{port}/metrics and /health (Ctrl-C to stop)")
    try:
        if timer is not None:
            timer.daemon = True
            timer.start()
        follow(open_stream, events.feed, stop, report, first)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if timer is not None:
            timer.cancel()
        server.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0

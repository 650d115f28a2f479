"""A three-node RabbitMQ cluster for the tests, beside the machine's own node.

Three nodes of the machine's RabbitMQ installation (3.10 on Debian 12): node names
``ctc1@localhost`` .. ``ctc3@localhost``, AMQP 5681-5683, management 15681-15683,
distribution 25681-25683, their own epmd on 4372 (``ERL_EPMD_PORT``) and their own data
directories and Erlang cookie under ``CELERYTOOL_CLUSTER_ROOT`` (default
/var/cache/celerytool-tests/cluster3). The machine's node (5672/15672/25672, epmd 4369) is
never touched: each node reads its own env file (``RABBITMQ_CONF_ENV_FILE``), not
/etc/rabbitmq's.

The cluster is left running between sessions (start-up is paid once per machine). Set-up
holds an exclusive ``flock``; so does every test that uses the cluster (``cluster_lock``), since
a test that stops a node would disturb another session's test: cluster tests of parallel
sessions / xdist workers run one at a time. Each test session uses its own vhost and deletes it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from services import RabbitNode, port_open, rabbit_api, wait_port

ROOT = Path(os.environ.get("CELERYTOOL_CLUSTER_ROOT", "/var/cache/celerytool-tests/cluster3"))
EPMD_PORT = 4372
SBIN = Path("/usr/lib/rabbitmq/bin")
COOKIE = "CELERYTOOLCLUSTERTESTCOOKIE"


@dataclass(frozen=True)
class ClusterNode:
    index: int

    @property
    def short(self) -> str:
        return f"ctc{self.index}"

    @property
    def nodename(self) -> str:
        return f"{self.short}@localhost"

    @property
    def amqp_port(self) -> int:
        return 5680 + self.index

    @property
    def mgmt_port(self) -> int:
        return 15680 + self.index

    @property
    def dist_port(self) -> int:
        return 25680 + self.index

    @property
    def dir(self) -> Path:
        return ROOT / self.short

    @property
    def rabbit(self) -> RabbitNode:
        return RabbitNode(self.short, amqp_port=self.amqp_port, mgmt_port=self.mgmt_port,
                          nodename=self.nodename, ctl_prefix=("env", *env_args(self)))

    def env(self) -> dict[str, str]:
        return {**os.environ, **dict(a.split("=", 1) for a in env_args(self))}

    def ctl(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(SBIN / "rabbitmqctl"), "-n", self.nodename, *args], env=self.env(),
                              check=check, capture_output=True, text=True, timeout=timeout)

    def running(self) -> bool:
        return port_open("127.0.0.1", self.amqp_port) and port_open("127.0.0.1", self.mgmt_port)

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup")
        wait_port("127.0.0.1", self.amqp_port, 120, f"{self.nodename} AMQP")
        wait_port("127.0.0.1", self.mgmt_port, 120, f"{self.nodename} management")

    def url(self, vhost: str) -> str:
        from urllib.parse import quote

        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/{quote(vhost, safe='')}"


NODES = (ClusterNode(1), ClusterNode(2), ClusterNode(3))


def env_args(node: ClusterNode) -> list[str]:
    d = node.dir
    return [f"HOME={ROOT}", f"RABBITMQ_CONF_ENV_FILE={d / 'rabbitmq-env.conf'}",
            f"RABBITMQ_NODENAME={node.nodename}", f"RABBITMQ_NODE_PORT={node.amqp_port}",
            f"RABBITMQ_DIST_PORT={node.dist_port}", f"ERL_EPMD_PORT={EPMD_PORT}",
            f"RABBITMQ_MNESIA_BASE={d / 'mnesia'}", f"RABBITMQ_LOG_BASE={d / 'log'}",
            f"RABBITMQ_CONFIG_FILE={d / 'rabbitmq'}",
            f"RABBITMQ_ENABLED_PLUGINS_FILE={d / 'enabled_plugins'}",
            f"RABBITMQ_PID_FILE={d / 'pid'}", "ERL_EPMD_ADDRESS=127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"]


@contextmanager
def locked(name: str) -> Iterator[None]:
    ROOT.mkdir(parents=True, exist_ok=True)
    with open(ROOT.parent / f"cluster3.{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_files(node: ClusterNode) -> None:
    d = node.dir
    (d / "log").mkdir(parents=True, exist_ok=True)
    (d / "rabbitmq-env.conf").write_text("# celerytool test cluster: nothing from /etc/rabbitmq\n")
    (d / "enabled_plugins").write_text("[rabbitmq_management].\n")
    (d / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{node.amqp_port}\n"
        f"management.tcp.port = {node.mgmt_port}\nmanagement.tcp.ip = 127.0.0.1\n"
        "loopback_users = none\n")
    cookie = ROOT / ".erlang.cookie"
    if not cookie.exists():
        cookie.write_text(COOKIE)
        cookie.chmod(0o400)


def launch_node(node: ClusterNode) -> None:
    """Start the node's Erlang VM (detached) when it is not up; returns at once."""
    write_files(node)
    if not port_open("127.0.0.1", node.dist_port):
        subprocess.run([str(SBIN / "rabbitmq-server"), "-detached"], env=node.env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def await_node(node: ClusterNode, timeout: float = 180) -> None:
    """Wait until the node's app is running. A restarted cluster node waits for its peers'
    tables, so all nodes must have been launched before any is awaited."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done = node.ctl("await_startup", "--timeout", "20", timeout=40, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            done = False
        if done:
            break
        if port_open("127.0.0.1", node.dist_port) and not port_open("127.0.0.1", node.amqp_port):
            try:  # the VM is up, the app stopped (a test that did not restore it)
                node.ctl("start_app", timeout=40, check=False)
            except subprocess.TimeoutExpired:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{node.nodename} did not start (logs in {node.dir / 'log'})")
        time.sleep(1)


def start_node(node: ClusterNode) -> None:
    launch_node(node)
    await_node(node)


def stop_everything() -> None:
    """Stop every test node (and only them) and remove their data: the next start forms a
    new cluster."""
    for node in NODES:
        try:
            node.ctl("stop", timeout=30, check=False)
        except subprocess.TimeoutExpired:
            pass
    # the VMs (their command line names our HOME and epmd port, not the node)
    subprocess.run(["pkill", "-9", "-f", f"beam.smp.* -home {ROOT} -epmd_port {EPMD_PORT}"], check=False)
    time.sleep(1)
    for node in NODES:
        shutil.rmtree(node.dir, ignore_errors=True)


def members(node: ClusterNode) -> set[str]:
    status = rabbit_api("GET", "/nodes?columns=name,running", node=node.rabbit)
    return {r["name"] for r in status if r.get("running")}  # type: ignore[union-attr]


def healthy() -> bool:
    if not all(n.running() for n in NODES):
        return False
    try:
        return members(NODES[0]) == {n.nodename for n in NODES}
    except Exception:
        return False


def form_cluster() -> None:
    for node in NODES:  # all VMs first: a node restarted from its data waits for the others
        launch_node(node)
    for node in NODES:
        await_node(node)
    wanted = {n.nodename for n in NODES}
    for node in NODES[1:]:
        status = node.ctl("cluster_status", "--formatter", "json").stdout
        if all(name in status for name in wanted):
            continue
        node.ctl("stop_app")
        node.ctl("reset")
        node.ctl("join_cluster", NODES[0].nodename)
        node.ctl("start_app")
        await_node(node)
    for node in NODES:
        wait_port("127.0.0.1", node.mgmt_port, 120, f"{node.nodename} management")
    deadline = time.monotonic() + 60
    while not healthy():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the test cluster did not form (logs under {ROOT})")
        time.sleep(0.5)


def ensure_cluster() -> tuple[ClusterNode, ...]:
    """All three nodes up and clustered (started / joined when needed). A cluster that does
    not come back from its data (nodes left in a state they cannot leave) is wiped and formed
    again: it holds nothing but test vhosts."""
    if healthy():
        return NODES
    with locked("setup"):
        if healthy():
            return NODES
        try:
            form_cluster()
        except (RuntimeError, subprocess.SubprocessError):
            stop_everything()
            form_cluster()
    return NODES


def failover_url(vhost: str, order: tuple[ClusterNode, ...] = NODES) -> str:
    return ";".join(n.url(vhost) for n in order)

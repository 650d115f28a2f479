"""Real three-node RabbitMQ clusters (tests/cluster.py), every test on each: ``rabbit3`` (the
machine's 3.10) and ``rabbit4`` (the chroot's 4.0.5). Quorum queues replicated on all three,
``queues`` showing their leader and online members, and peek through a failover URL
``amqp://n1;amqp://n2;amqp://n3`` while the leader's node is killed mid-walk (selected purge /
move under the same failure).

The moment a node is stopped is seeded (the seed is printed: CELERYTOOL_CLUSTER_SEED replays it):
the node is stopped once the command holds that many unacknowledged messages.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pika
import pytest
from amqp_helpers import drain_ids, take
from cluster import INSTALLATIONS, ClusterNode, ensure_cluster, failover_url, locked

from services import RabbitVhost, free_port

ROOT = Path(__file__).resolve().parents[1]
QUORUM = {"x-queue-type": "quorum"}


@pytest.fixture(scope="session", params=INSTALLATIONS, ids=[inst.name for inst in INSTALLATIONS])
def cluster_vhost(request):
    """A vhost of our own on one cluster (each test runs on the 3.x and the 4.x one); ``.nodes``
    are the cluster's nodes, ``.inst`` its installation."""
    inst = request.param
    ensure_cluster(inst)
    vhost = RabbitVhost(f"celerytool-cluster-{uuid.uuid4().hex[:8]}", node=inst.nodes[0].rabbit).create()
    vhost.nodes = inst.nodes
    vhost.inst = inst
    yield vhost
    with locked("use", inst):
        restore(inst.nodes)
        vhost.delete()


def restore(nodes: tuple[ClusterNode, ...]) -> None:
    from cluster import start_node

    from services import port_open

    for node in nodes:
        if node.running():
            continue
        if port_open("127.0.0.1", node.dist_port):
            node.start_app()  # the VM is up, a test stopped the app (await_startup would wait it out)
        else:
            start_node(node)  # the VM was killed
        wait_for(node.running, what=f"{node.nodename} back")


@pytest.fixture
def cluster(cluster_vhost):
    """The cluster, all nodes up, for this test alone (a stopped node would disturb others)."""
    with locked("use", cluster_vhost.inst):
        restore(cluster_vhost.nodes)
        cluster_vhost.delete_queues()
        try:
            yield cluster_vhost
        finally:
            restore(cluster_vhost.nodes)


def celerytool(*args: str, timeout: float = 120) -> subprocess.Popen:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.Popen([sys.executable, "-m", "celerytool", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def finish(proc: subprocess.Popen, timeout: float = 180) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def channel(node: ClusterNode, vhost: RabbitVhost):
    conn = pika.BlockingConnection(pika.URLParameters(node.url(vhost.name)))
    return conn, conn.channel()


def publish(node: ClusterNode, vhost: RabbitVhost, queue: str, names: list[str]) -> list[str]:
    """Protocol-2 task messages, confirmed, into a quorum queue declared through ``node``
    (its leader, by RabbitMQ's client-local placement); their ids in order."""
    conn, ch = channel(node, vhost)
    before = ch.queue_declare(queue, durable=True, arguments=QUORUM).method.message_count
    ids = []
    for i, name in enumerate(names):
        tid = f"{queue}-{i}"
        ch.basic_publish("", queue, f"[[{i}], {{}}, {{}}]".encode(), pika.BasicProperties(
            content_type="application/json", content_encoding="utf-8", delivery_mode=2,
            headers={"lang": "py", "task": name, "id": tid}))
        ids.append(tid)
    wait_for(lambda: ch.queue_declare(queue, passive=True).method.message_count == before + len(names),
             what=f"{len(names)} messages in {queue}")
    conn.close()
    return ids


def read_all(vhost: RabbitVhost, queue: str) -> list[str]:
    """Every message id of ``queue`` (removing them), through whichever node answers."""
    for node in vhost.nodes:
        if node.running():
            conn, ch = channel(node, vhost)
            out = drain_ids(ch, queue)
            conn.close()
            return out
    raise AssertionError("no node answers")


def queue_row(vhost: RabbitVhost, queue: str) -> dict:
    for node in vhost.nodes:
        if node.running():
            return vhost.api("GET", f"/queues/{vhost.quoted}/{queue}") if node is vhost.nodes[0] else \
                RabbitVhost(vhost.name, node=node.rabbit).api("GET", f"/queues/{vhost.quoted}/{queue}")
    raise AssertionError("no node answers")


def wait_for(cond, seconds: float = 90, what: str = "condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {seconds} s")


def seeded() -> random.Random:
    seed = int(os.environ.get("CELERYTOOL_CLUSTER_SEED") or random.randrange(1 << 30))
    print(f"cluster seed: CELERYTOOL_CLUSTER_SEED={seed}")
    return random.Random(seed)


def node_by_name(nodes: tuple[ClusterNode, ...], name: str) -> ClusterNode:
    return next(n for n in nodes if n.nodename == name)


def test_queues_shows_leader_and_online_members(cluster):
    import json

    publish(cluster.nodes[1], cluster, "qq", ["tasks.a"] * 3)
    _, ch = channel(cluster.nodes[0], cluster)
    ch.queue_declare("classic", durable=True)
    url = failover_url(cluster.name, cluster.nodes)
    code, out, err = finish(celerytool("queues", "-b", url, "-o", "json"))
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    every = sorted(n.nodename for n in cluster.nodes)
    assert rows["qq"]["leader"] == cluster.nodes[1].nodename  # declared through node 2: client-local
    assert rows["qq"]["members"] == every and rows["qq"]["online"] == every
    assert "leader" not in rows["classic"]
    cluster.nodes[1].stop_app()
    # a new leader is elected among the two others; node 2 is a member still, not online
    row = wait_for(lambda: (lambda r: r if r.get("leader") not in (None, "", cluster.nodes[1].nodename) else None)(
        queue_row(cluster, "qq")), what="a new leader")
    code, out, err = finish(celerytool("queues", "-b", url, "-o", "json"))
    assert code == 0, err
    qq = {r["name"]: r for r in json.loads(out)}["qq"]
    assert qq["leader"] == row["leader"] and qq["members"] == every
    assert cluster.nodes[1].nodename not in qq["online"] and len(qq["online"]) == 2
    code, out, err = finish(celerytool("queues", "-b", url))  # the table has the columns
    assert code == 0 and "leader" in out and "online" in out, err


def test_failover_url_skips_a_stopped_first_node_and_masks_every_password(cluster):
    ids = publish(cluster.nodes[1], cluster, "qq", ["tasks.a"] * 5)
    cluster.nodes[0].stop_app()
    code, out, err = finish(celerytool("peek", "qq", "-b", failover_url(cluster.name, cluster.nodes), "-o", "json", "--all"))
    assert code == 0, err
    import json

    assert [m["id"] for m in json.loads(out)] == ids
    dead = [free_port() for _ in range(3)]
    url = ";".join(f"amqp://guest:s3cret{i}@127.0.0.1:{p}//" for i, p in enumerate(dead))
    code, out, err = finish(celerytool("peek", "qq", "-b", url))
    assert code == 69 and out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("celerytool: error: "), err
    assert all(f"127.0.0.1:{p}" in lines[0] for p in dead) and "s3cret" not in err


def walk_with_leader_stopped(cluster, rng: random.Random, queue: str, args: list[str], total: int):
    """Run ``celerytool *args`` through the failover URL (connected to its first node, the queue's leader)
    and kill its node once it holds a seeded number of unacked messages; start it again."""
    leader = cluster.nodes[0]
    threshold = rng.randrange(1, total // 4)
    pid = leader.ctl("eval", "os:getpid().").stdout.strip().strip('"')  # asked before: kill at once
    proc = celerytool(*args, "-b", failover_url(cluster.name, cluster.nodes))
    reached = False
    deadline = time.monotonic() + 120
    conn, ch = channel(cluster.nodes[1], cluster)  # a passive declare on another node: milliseconds
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready = ch.queue_declare(queue, passive=True).method.message_count
            if total - ready >= threshold:
                reached = True
                break
    finally:
        conn.close()
    if reached:
        os.kill(int(pid), signal.SIGKILL)  # (no kill(1): procps is not on every machine)
        reached = proc.poll() is None  # still at work when its node died
        from services import port_open

        wait_for(lambda: not port_open("127.0.0.1", leader.dist_port), what=f"{leader.nodename} gone")
    code, out, err = finish(proc)
    if reached:
        from cluster import start_node

        start_node(leader)
        leader.ctl("await_startup")
        wait_for(lambda: leader.running(), what=f"{leader.nodename} back")
    print(f"killed {leader.nodename} at {threshold} taken: {reached}; exit {code}; {err.strip()[-300:]}")
    assert reached, f"the command ended before its node was killed at {threshold}: nothing was tested ({err})"
    return reached, code, out, err


def check_outcome(code: int, err: str) -> None:
    assert code in (0, 69), err
    if code == 69:
        lines = [line for line in err.splitlines() if line.strip() and "error" in line]
        assert len(lines) == 1 and "Traceback" not in err, err


def test_peek_through_a_leader_failure_loses_nothing(cluster):
    rng = seeded()
    names = ["tasks.a"] * 3000
    ids = publish(cluster.nodes[0], cluster, "qq", names)
    reached, code, out, err = walk_with_leader_stopped(cluster, rng, "qq", ["peek", "qq", "--all", "-o", "json"],
                                                      len(names))
    check_outcome(code, err)
    if code == 0:
        import json

        assert [m["id"] for m in json.loads(out)] == ids  # a complete listing, or exit 69
    wait_for(lambda: sorted(read_all_keep(cluster, "qq")) == sorted(ids), what="every message back")


def read_all_keep(cluster, queue: str) -> list[str]:
    """The ids in ``queue`` by the management API's count and a passive read (nothing removed)."""
    for node in cluster.nodes:
        if node.running():
            conn, ch = channel(node, cluster)
            got = [props.headers["id"] for _, props, _ in take(ch, queue, ack=False)]
            while True:
                method, props, _ = ch.basic_get(queue, auto_ack=False)
                if method is None:
                    break
                got.append(props.headers["id"])
            conn.close()  # all returned
            return got
    return []


@pytest.mark.parametrize("command", ["purge", "move"])
def test_selected_walk_through_a_leader_failure(cluster, command):
    """Kept messages never lost; moved ones at-least-once; exit 0 only when the work is done."""
    rng = seeded()
    names = ["tasks.keep", "tasks.drop"] * 4000
    ids = publish(cluster.nodes[0], cluster, "qq", names)
    publish(cluster.nodes[0], cluster, "qdst", [])
    args = ["purge", "qq", "--task", "tasks.drop", "-y"] if command == "purge" else \
        ["move", "qq", "qdst", "--task", "tasks.drop", "-y"]
    _, code, _, err = walk_with_leader_stopped(cluster, rng, "qq", args, len(names))
    check_outcome(code, err)
    keep = {i for i, n in zip(ids, names, strict=True) if n == "tasks.keep"}
    drop = {i for i, n in zip(ids, names, strict=True) if n == "tasks.drop"}
    left, moved = read_all(cluster, "qq"), read_all(cluster, "qdst")
    print(f"{command}: exit {code}; {len(left)} left ({len(left) - len(set(left))} duplicates), "
          f"{len(moved)} in qdst ({len(moved) - len(set(moved))} duplicates)")
    assert keep <= set(left)  # no kept message lost
    assert set(left) <= keep | drop and set(moved) <= drop
    if command == "move":
        assert drop <= set(left) | set(moved)  # no moved message lost (at-least-once)
    if code == 0:
        assert not drop & set(left), "exit 0 with work undone"
        if command == "move":
            assert set(moved) == drop

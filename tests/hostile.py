"""A hostile "worker" written with kombu: it answers remote-control broadcasts with crafted
replies (any bytes, any content type), on a real broker."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

from kombu import Connection, Exchange
from kombu.pidbox import Mailbox

# a reply: (raw body, content type), or None to stay silent
Reply = tuple[bytes, str] | None


class HostileWorker(threading.Thread):
    """Bound to the control exchange as ``name`` (like a worker); ``answer(method)`` crafts the reply."""

    def __init__(self, url: str, answer: Callable[[str], Reply], name: str | None = None) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.answer = answer
        self.name_ = name or f"hostile-{uuid.uuid4().hex[:8]}@localhost"
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.asked: list[str] = []

    def run(self) -> None:
        with Connection(self.url) as conn:
            mailbox = Mailbox("celery", type="fanout", accept=["json"])(conn)
            node = mailbox.Node(self.name_, channel=conn.channel())
            producer_channel = conn.channel()

            def on_request(body, message) -> None:
                method = body.get("method")
                dest = body.get("destination")
                if dest and self.name_ not in dest:
                    return
                self.asked.append(method)
                reply = self.answer(method)
                reply_to = body.get("reply_to")
                if reply is None or not reply_to:
                    return
                raw, content_type = reply
                exchange = Exchange(reply_to["exchange"], type="direct", durable=False,
                                    delivery_mode="transient")
                conn.Producer(producer_channel).publish(
                    raw, exchange=exchange, routing_key=reply_to["routing_key"],
                    content_type=content_type, content_encoding="binary",
                    headers={"ticket": body.get("ticket"), "clock": 1})

            consumer = node.listen(callback=on_request)
            self.ready.set()
            with consumer:
                while not self.stopping.is_set():
                    try:
                        conn.drain_events(timeout=0.2)
                    except TimeoutError:
                        pass
            node.channel.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


"""Read ahead in a second process: a producer's items arrive in batches while the caller works.

``retry`` reads and decodes stored results (CPU: JSON, the inert unpickler) and builds and
publishes messages (CPU again); one Python process does one at a time.  ``read_ahead`` runs
the producer in a forked child that sends its items back over a pipe, so reading the next
results overlaps sending the last ones on a second core.

- The child only reads: it gets a copy of the parent's memory (fork) and opens its own
  connections; it never writes to stdout, and leaves with ``os._exit`` (no atexit handlers,
  no flushing of buffers it inherited).
- Items cross the pipe pickled.  They are the child's own objects (plain values and the
  inert decoders' placeholders, never a class a broker named), and the pipe has no other
  writer, so unpickling them runs nothing foreign.
- A ``CeleryToolError`` in the child is raised in the parent, with its exit code, once the
  items before it were handed over; any other error is exit 70 with its one line.
- The parent ending early (an error, a limit, Ctrl-C) kills and reaps the child.
- Without ``os.fork`` (or when asked not to) the producer runs in the caller's process.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO, TypeVar

from celerytool.errors import CeleryToolError, ExitCode

T = TypeVar("T")
BATCH = 2000  # items per pickled record
PIPE_BYTES = 16 << 20  # asked for the pipe (root may; others get the 1 MiB Linux allows)


def read_ahead(produce: Callable[[], Iterable[T]], *, enabled: bool = True, batch: int = BATCH) -> Iterator[T]:
    """Every item ``produce()`` yields, in order; the child starts at once (before the caller
    starts threads of its own, such as a progress bar's)."""
    if not enabled or not hasattr(os, "fork"):
        return iter(produce())
    read_fd, write_fd = os.pipe()
    _widen(write_fd)
    pid = os.fork()
    if pid == 0:  # the child: produce, send, leave without running the parent's exit code
        os.close(read_fd)
        _child(produce, write_fd, batch)
    os.close(write_fd)
    return _Received(pid, os.fdopen(read_fd, "rb", buffering=1 << 20))


class _Received(Iterator[Any]):
    """The parent's end: items as they arrive; closed (child killed and reaped) at the end,
    on an error, or when dropped unfinished."""

    def __init__(self, pid: int, pipe: BinaryIO) -> None:
        self.pid: int | None = pid
        self.pipe = pipe
        self.items: Iterator[Any] = iter(())

    def __next__(self) -> Any:
        for item in self.items:
            return item
        while self.pid is not None:
            try:
                record = pickle.load(self.pipe)  # noqa: S301 - our own child's objects (see above)
            except EOFError:
                self.close()
                raise CeleryToolError("the reading process stopped without a word", ExitCode.SOFTWARE) from None
            except BaseException:
                self.close()
                raise
            if record[0] == "items":
                self.items = iter(record[1])
                for item in self.items:
                    return item
            elif record[0] == "end":
                self.close(finished=True)
            else:
                self.close()
                raise CeleryToolError(record[1], ExitCode(record[2]))
        raise StopIteration

    def close(self, finished: bool = False) -> None:
        pid, self.pid = self.pid, None
        if pid is None:
            return
        self.pipe.close()
        if not finished:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.waitpid(pid, 0)

    def __del__(self) -> None:
        self.close()


def _widen(fd: int) -> None:
    """A pipe of 1 MiB or more where Linux allows (64 KiB by default): the child reads on
    while the parent publishes a batch, instead of waiting for it to read again."""
    import fcntl

    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is None:
        return
    for size in (PIPE_BYTES, 1 << 20):
        try:
            fcntl.fcntl(fd, setsize, size)
            return
        except OSError:
            continue


def _child(produce: Callable[[], Iterable[Any]], write_fd: int, batch: int) -> None:
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it kills us
        with os.fdopen(write_fd, "wb", buffering=1 << 20) as pipe:
            try:
                items: list[Any] = []
                for item in produce():
                    items.append(item)
                    if len(items) >= batch:
                        pickle.dump(("items", items), pipe, pickle.HIGHEST_PROTOCOL)
                        pipe.flush()
                        items = []
                pickle.dump(("items", items), pipe, pickle.HIGHEST_PROTOCOL)
                pickle.dump(("end",), pipe, pickle.HIGHEST_PROTOCOL)
            except CeleryToolError as exc:
                pickle.dump(("items", items), pipe, pickle.HIGHEST_PROTOCOL)
                pickle.dump(("error", exc.message, int(exc.exit_code)), pipe, pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # a bug: the parent reports it as exit 70
                pickle.dump(("items", items), pipe, pickle.HIGHEST_PROTOCOL)
                pickle.dump(("error", f"while reading: {type(exc).__name__}: {exc}", int(ExitCode.SOFTWARE)),
                            pipe, pickle.HIGHEST_PROTOCOL)
    except BaseException:  # the parent went away (a broken pipe), or worse: nothing to tell anyone
        code = 1
    finally:
        os._exit(code)

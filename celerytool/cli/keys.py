"""Single key presses from the terminal (for ``top``), without waiting for Enter."""

from __future__ import annotations

import os
import select
import sys
from typing import Any


class KeyReader:
    """stdin in cbreak mode while in use (Ctrl-C still interrupts); restored on exit."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno()
        self.saved: Any = None

    def __enter__(self) -> KeyReader:
        import termios
        import tty

        self.saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc: Any) -> None:
        import termios

        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def pressed(self) -> set[str]:
        """The keys typed since the last call (empty when none)."""
        keys: set[str] = set()
        while select.select([self.fd], [], [], 0)[0]:
            data = os.read(self.fd, 64)
            if not data:
                break
            keys.update(data.decode("utf-8", "replace"))
        return keys

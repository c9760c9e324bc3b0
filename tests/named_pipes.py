"""Named pipes in tests: a call that must refuse a FIFO unread would, when it regresses, block the suite forever."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable

import pytest


def make_fifo(path: Path) -> Path:
    """A named pipe at ``path`` (skips the test where the platform has none)."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this platform")
    os.mkfifo(path)
    return path


def unblocked(call: Callable[[], Any], fifo: Path, seconds: float = 60) -> Any:
    """``call()``'s value (or its exception, raised again); fails the test instead of hanging when ``call`` is
    still blocked after ``seconds``, after opening and closing ``fifo`` for writing, which ends a blocked read."""
    outcome: dict[str, Any] = {}

    def target():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test as it was raised
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # the blocked reader gets its end of file
        except OSError:
            pass
        thread.join(5)
        pytest.fail(f"blocked for {seconds:g} s on the named pipe {fifo}: it was read instead of refused")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]

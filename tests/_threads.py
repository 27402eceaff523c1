"""Shared autouse fixture: every thread a test starts (servers, bots, notifiers) is gone when it ends.

Import it into a test module (``from _threads import _no_thread_left_behind``) to enable it there.
"""

from __future__ import annotations

import threading
import time

import pytest


@pytest.fixture(autouse=True)
def _no_thread_left_behind():
    """Every server, bot and notifier thread a test starts is gone when it ends."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while (left := [t.name for t in threading.enumerate() if t not in before and t.is_alive()]) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"threads left running: {left}"

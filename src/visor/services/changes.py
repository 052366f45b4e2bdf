"""What changed in a workspace, in order: each finished job, tag edit, import or deletion,
with the dataset it was about. The server's event stream (`GET /api/events`) follows it, so
a page sees what the CLI or a notebook did through the server without reloading."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

KEPT = 1024  # a client that falls further behind reloads everything


class Changes:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._log: deque[dict[str, Any]] = deque(maxlen=KEPT)

    def record(self, dataset: str | None, what: str) -> None:
        with self._lock:
            self._seq += 1
            self._log.append(
                {"seq": self._seq, "dataset": dataset, "what": what, "at": time.time()}
            )

    @property
    def seq(self) -> int:
        return self._seq

    def since(self, seq: int) -> list[dict[str, Any]]:
        """The changes after `seq`, oldest first (one `reload` entry if some were dropped)."""
        with self._lock:
            if self._log and self._log[0]["seq"] > seq + 1:
                return [{"seq": self._seq, "dataset": None, "what": "reload", "at": time.time()}]
            return [c for c in self._log if c["seq"] > seq]

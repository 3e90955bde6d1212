"""A buffer that a daemon thread empties every ``flush_seconds`` (and on :meth:`close`), never on the
caller's path: what the endpoint server's data capture and its CloudWatch metrics share."""

from __future__ import annotations

import threading


class PeriodicFlusher:
    """Subclasses fill a buffer under ``self._lock``, call :meth:`_ensure_started`, and implement
    :meth:`flush` (take the buffer under the lock, write it, return how many items were written)."""

    thread_name = "flusher"

    def __init__(self, flush_seconds: float) -> None:
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def flush(self) -> int:
        raise NotImplementedError

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def close(self) -> None:
        """Stop the thread and flush what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()

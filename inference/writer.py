"""Background PNG writing, so that encoding and disk I/O overlap the network."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from util.image import write_image


class MaskWriter:
    """Writes 8-bit images as PNG (atomically) on ``threads`` threads.

    ``initializer`` runs once in each thread (e.g. to lower its scheduling priority).

    At most ``max_pending`` images wait in memory: ``submit`` blocks on the oldest write
    beyond that, so memory does not grow with a video's length. The first failed write
    is raised from ``submit`` or ``close``.
    """

    def __init__(
        self, threads: int = 2, max_pending: int = 64, initializer: Callable[[], None] | None = None
    ):
        self._pool = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="png", initializer=initializer
        )
        self._pending: deque[Future] = deque()
        self._max_pending = max_pending

    def submit(self, path: Path, image: np.ndarray) -> Future:
        """Queue one write; the returned future is done once the file is in place."""
        future = self._pool.submit(write_image, path, image)
        self._pending.append(future)
        while len(self._pending) > self._max_pending:
            self._pending.popleft().result()
        return future

    def flush(self) -> None:
        """Wait for every submitted write."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> MaskWriter:
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # already failing: drop what waits, keep the first error
            self._pool.shutdown(wait=True, cancel_futures=True)

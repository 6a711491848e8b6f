"""Exclusive locks on the files astrovader writes (run directories, prediction outputs).

Two processes writing the same run directory or prediction file would silently lose
work (a re-submitted batch job is enough). :class:`WriteLock` takes an exclusive,
non-blocking ``flock`` on a small lock file that names its holder; a second writer gets
a :class:`~astrovader.errors.LockedError` at once::

    astrovader: error: p.csv is being written by process 4242 (host node07); wait for it or use another --out

The kernel releases the lock when its process dies (even on SIGKILL), so a crashed run
never leaves a stale lock behind; the lock file itself is removed on release.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from astrovader.errors import AstrovaderError, LockedError

try:
    import fcntl
except ImportError:  # Windows: no flock; locking is skipped there
    fcntl = None

__all__ = ["WriteLock"]


class WriteLock:
    """An exclusive lock on ``target`` held through the lock file ``lock_path``.

    Args:
        target: what is protected (named in the error message).
        lock_path: the lock file (created; removed on release).
        hint: what the second writer should do (end of the error message).

    Use as a context manager, or call :meth:`acquire` / :meth:`release`.

    Raises:
        LockedError: in :meth:`acquire`, when another process holds the lock.
    """

    def __init__(self, target: str | os.PathLike, lock_path: str | os.PathLike,
                 hint: str = "wait for it or use another --out"):
        self.target = Path(target)
        self.path = Path(lock_path)
        self.hint = hint
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _holder(self) -> str:
        # the holder writes its pid/host just after taking the lock: give it a moment
        for _ in range(40):
            try:
                info = json.loads(self.path.read_text())
                return f"process {info['pid']} (host {info['host']})"
            except (OSError, ValueError, KeyError, TypeError):
                time.sleep(0.05)
        return "another process"

    def acquire(self) -> "WriteLock":
        if self._fd is not None or fcntl is None:
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise AstrovaderError(f"{self.target}: cannot write here ({exc.strerror}); "
                                      "check the path and its permissions or choose another --out") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise LockedError(f"{self.target} is being written by {self._holder()}; {self.hint}") from None
            # the holder before us may have removed the file after we opened it: retry on the new one
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding the lock (see acquire)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "WriteLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

"""One landscape4d process per run folder: RUN/.lock, held while a command writes in RUN.

The lock is an advisory `flock` on RUN/.lock, which also holds the owner's pid for the message a second process
gets ("RUN is in use by pid N"). The kernel drops a flock when its process dies, however it dies (kill -9
included), so a lock left by a killed process is never in the way: the next command takes it over. Where flock is
not available, the pid in the file decides: a lock whose process is gone is taken over.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import RunInUseError

LOCK_NAME = ".lock"

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError):
        return False
    return True


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class RunLock:
    """`with RunLock(run_dir):` the run folder (which must exist) is this process's until the block ends; raises
    RunInUseError when another live process holds it."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                self._take(fd)
            except BaseException:
                os.close(fd)
                raise
            try:  # the file may have been removed by its previous owner between our open and our lock: retry
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except BaseException:  # e.g. a full disk: give the lock back
            self.release()
            raise
        return self

    def _take(self, fd: int) -> None:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                raise RunInUseError(self.path.parent, _read_pid(self.path)) from None
            except OSError as e:
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
        pid = _read_pid(self.path)  # no flock here: the pid in the file decides
        if pid is not None and pid != os.getpid() and pid_alive(pid):
            raise RunInUseError(self.path.parent, pid)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it: a process waiting on this file retries (see acquire)
        except OSError:
            pass
        os.close(self._fd)  # drops the flock
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

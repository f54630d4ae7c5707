"""One writer per run directory: a lock file naming the process that holds it.

`dim-keras train --out DIR` (on the chief, in a distributed run) and
`dim-keras tune --out DIR` (on the process serving the search) hold
`DIR/run.lock` while they run. The file is created atomically (it exists or
not, for every process at once) and holds JSON: the holder's `pid`, `host`,
the time it `started` and its `command`. A second process asking for the
same directory is refused at once with one line naming the holder.

A lock left behind by a killed process never blocks a resume: a lock file
of this host whose process has ended, or an empty or unreadable one (its
writer killed while writing it), is stale and taken over. A lock of another
host cannot be checked and is respected; its message says to remove it if
that run is over.
"""

import contextlib
import datetime
import json
import os
import shlex
import socket
import sys

from dim_keras.runs import RunError
from dim_keras.runs import write_advice
from dim_keras.runs import write_reason

LOCK_FILE = "run.lock"


class RunLockedError(RunError):
    """The directory is held by another process that is (or may be) running.

    Args:
        directory: str, the locked directory.
        holder: dict, the lock file's content (`pid`, `host`, `started`).
        what: str, what the directory is, capitalized ("Run directory").
    """

    def __init__(self, directory, holder, what="Run directory"):
        self.directory = directory
        self.holder = holder
        message = (
            f"{what} {directory} is in use by process {holder.get('pid')} "
            f"on host {holder.get('host')} since {holder.get('started')}; "
            "wait for it to finish or use another --out"
        )
        if not same_process_space(holder):
            message += (
                " (this host cannot tell whether that process still runs: "
                f"if it does not, remove {os.path.join(directory, LOCK_FILE)})"
            )
        super().__init__(f"{message}. Received: out={directory}")


def pid_namespace():
    """The id of this process's pid namespace (Linux), or None.

    Containers sharing a host name may each number their own processes.
    """
    try:
        return os.readlink("/proc/self/ns/pid")
    except (OSError, AttributeError):
        return None


def same_process_space(holder):
    """Whether a lock's holder runs where this process can see it.

    Args:
        holder: dict from `read_holder`.

    Returns:
        bool: the same host name and pid namespace.
    """
    return (holder.get("host") == socket.gethostname()
            and holder.get("pid_namespace") == pid_namespace())


def process_alive(pid):
    """Whether a process of this host with id `pid` runs.

    Args:
        pid: int.

    Returns:
        bool; True when it runs but belongs to another user, False for a
        killed process its parent has not yet waited for (a zombie).
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError:
        return False
    stat = _proc_stat(pid)
    return stat is None or stat[0] != "Z"


def process_start(pid):
    """When a process started, in clock ticks since boot (Linux only).

    Tells a process from a later one that got the same id.

    Args:
        pid: int.

    Returns:
        str, or None where it cannot be read.
    """
    stat = _proc_stat(pid)
    return stat[19] if stat is not None and len(stat) > 19 else None


def _proc_stat(pid):
    """Fields 3 onwards of `/proc/PID/stat` (state first); None off Linux."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces.
    return stat.rsplit(")", 1)[-1].split()


def read_holder(path):
    """Reads a lock file.

    Args:
        path: str, the lock file.

    Returns:
        The holder dict (with an int `pid`); None if the file is gone;
        `{}` if it is empty or not a lock (its writer was killed while
        writing it).
    """
    try:
        with open(path, encoding="utf-8") as f:
            holder = json.loads(f.read())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    if not isinstance(holder, dict) or not isinstance(holder.get("pid"), int):
        return {}
    return holder


def holder_alive(holder):
    """Whether a lock's holder may still be running.

    Args:
        holder: dict from `read_holder`.

    Returns:
        False for an unreadable lock, or one of this host whose process
        has ended (or whose id a later process took); True otherwise,
        including every lock of another host (or container).
    """
    if not holder:
        return False
    if not same_process_space(holder):
        return True
    pid = holder["pid"]
    if not process_alive(pid):
        return False
    started = holder.get("process_start")
    return started is None or process_start(pid) in (None, started)


def this_process(command=None):
    """The lock file content for this process.

    Args:
        command: str or None; None takes the process's command line.

    Returns:
        Dict with `pid`, `host`, `started` (ISO time), `command`,
        `process_start` and `pid_namespace`.
    """
    started = datetime.datetime.now().astimezone()
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": started.isoformat(timespec="seconds"),
        "command": command if command is not None else shlex.join(sys.argv),
        "process_start": process_start(os.getpid()),
        "pid_namespace": pid_namespace(),
    }


@contextlib.contextmanager
def _serialized(directory):
    """Holds an advisory lock on `directory` itself while checking its lock.

    Two processes finding the same stale lock must not both take it over;
    the kernel drops this lock when its process dies. Where it is not
    supported (other systems, some network file systems) nothing is held.
    """
    try:
        import fcntl

        fd = os.open(directory, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases it


def _create(path, holder):
    """Creates the lock file holding `holder`; False if it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(holder) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(path)
        raise
    return True


class RunLock:
    """Holds `<directory>/run.lock`: one writing process per directory.

    Use it as a context manager (or call `acquire` and `release`):

    ```python
    with RunLock(run_dir):
        ...  # only this process writes run_dir
    ```

    Args:
        directory: str, the directory (created if needed).
        what: str, what the directory is, for messages ("Run directory",
            "Search directory").
        command: str or None, the command recorded in the lock; None takes
            the process's command line.

    Attributes:
        stale: after `acquire`, the content of a stale lock that was taken
            over (`{}` if it was unreadable), or None if there was none.
    """

    def __init__(self, directory, what="Run directory", command=None):
        self.directory = directory
        self.path = os.path.join(directory, LOCK_FILE)
        self.what = what
        self.command = command
        self.stale = None
        self._holder = None
        self._created = False

    def acquire(self):
        """Takes the lock, or refuses at once.

        Returns:
            self.

        Raises:
            RunLockedError: if another process that may be running holds it.
            RunError: if the directory or the lock file cannot be written.
        """
        holder = this_process(self.command)
        try:
            self._created = not os.path.isdir(self.directory)
            os.makedirs(self.directory, exist_ok=True)
            with _serialized(self.directory):
                self._take(holder)
        except OSError as e:
            raise RunError(
                f"Cannot write in {self.what.lower()} {self.directory}: "
                f"{write_reason(e)}; {write_advice(e)} or use another --out. "
                f"Received: out={self.directory}"
            ) from None
        self._holder = holder
        return self

    def _take(self, holder):
        # A few rounds: a lock may vanish or appear between two looks.
        for _ in range(5):
            if _create(self.path, holder):
                return
            current = read_holder(self.path)
            if current is None:
                continue  # released meanwhile
            if holder_alive(current):
                raise RunLockedError(self.directory, current, self.what)
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
            self.stale = current
        raise RunError(
            f"Cannot take the lock {self.path}: it keeps changing (several "
            "processes starting at once?); try again, or use another --out. "
            f"Received: out={self.directory}"
        )

    def release(self):
        """Removes the lock file if it is still this process's.

        A directory that `acquire` created and that is still empty is
        removed too: a command that failed before writing leaves nothing.
        """
        if self._holder is None:
            return
        if read_holder(self.path) == self._holder:
            with contextlib.suppress(OSError):
                os.remove(self.path)
        if self._created:
            with contextlib.suppress(OSError):
                os.rmdir(self.directory)  # only if empty
        self._holder = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()

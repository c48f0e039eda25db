"""A thread-free process that has already imported the worker code and forks workers on request.

Why: a fresh interpreter (spawn) costs ~80 ms and a forkserver ~30 ms per task, while a fork of
a process that already holds the worker modules costs a few milliseconds. Forking the node
itself is unsafe (it runs threads: bus, HTTP server, supervisor), so the node starts this
small launcher once, with ``subprocess``, and asks it to fork.

The node and the launcher talk over a SOCK_SEQPACKET pair in the small records of
:mod:`skalds.worker.protocol`; each :class:`~skalds.worker.protocol.Launch` carries the worker's
pipe and the write ends of its stdout and stderr pipes (SCM_RIGHTS), and the task itself
(attachments of any size) travels on the worker's pipe, never in a datagram. Closing the node's end ends the launcher; every process here dies with its parent
(PR_SET_PDEATHSIG), so a killed node leaves no orphan behind.
"""

from __future__ import annotations

import ctypes
import gc
import io
import json
import logging
import os
import pickle
import selectors
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from skalds.errors import SkaldsError
from skalds.utils.proctitle import set_title
from skalds.worker.protocol import Exited, Launch, Launched, Preload, Ready, WorkerSpec

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
#: Set in the launcher's environment. A script that calls ``Skalds(...).run()`` at module level
#: (as the seed's examples do) is imported here to load its worker classes; ``run()`` sees this
#: and returns instead of starting a second Skald.
IN_LAUNCHER_ENV = "SKALDS_IN_LAUNCHER"
_MAX_PACKET = 64 * 1024


class LauncherGone(SkaldsError):
    """The launcher process died; no worker can be started on this node."""


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass


def exit_description(returncode: int | None) -> str:
    """Human words for a wait status as ``subprocess`` reports it (negative = signal)."""
    if returncode is None:
        return "exit status unknown"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


# ----------------------------------------------------------------------------------------
# node side


class LauncherClient:
    """The node's handle on its launcher process. ``launch`` is thread-safe; ``receive`` is
    called by the one thread that watches ``fileno()`` (the supervisor)."""

    def __init__(
        self, preload: list[str], log_level: str = "INFO", title: str = "skalds launcher", prefork: int = 0
    ) -> None:
        self.modules = preload
        self.log_level = log_level
        self.title = title
        self.prefork = prefork
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the launcher and return once it has imported the worker modules.

        Raises:
            LauncherGone: it could not import them (its log says why).
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cmd = [
            sys.executable,
            "-m",
            "skalds.node.launcher",
            str(theirs.fileno()),
            json.dumps(self.modules),
            self.log_level,
            self.title,
            str(self.prefork),
        ]
        # The launcher must import what the node can: a script's own directory (sys.path[0]
        # of `python my_app.py`) is not on a fresh interpreter's path otherwise.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), IN_LAUNCHER_ENV: "1"}
        self._proc = subprocess.Popen(cmd, pass_fds=[theirs.fileno()], close_fds=True, env=env)
        theirs.close()
        ready = ours.recv(_MAX_PACKET)
        if not ready or not isinstance(pickle.loads(ready), Ready):
            code = self._proc.wait()
            ours.close()
            raise LauncherGone(f"worker launcher failed to start ({exit_description(code)}); see its log above")
        self._sock = ours

    def fileno(self) -> int:
        """The socket the supervisor watches for launcher messages."""
        if self._sock is None:
            raise LauncherGone("launcher not started")
        return self._sock.fileno()

    @property
    def pid(self) -> int | None:
        """The launcher's process id."""
        return self._proc.pid if self._proc else None

    def launch(self, launch_id: int, spec: WorkerSpec) -> tuple[Connection, int, int]:
        """Fork a worker for ``spec`` and return the node's end of its pipe and the read ends
        (non-blocking) of its stdout and stderr.

        Raises:
            LauncherGone: the launcher is not running.
        """
        node_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        request = Launch(launch_id, f"skalds worker {spec.task_id} {spec.class_name}")
        try:
            with self._lock:
                if self._sock is None:
                    raise LauncherGone("launcher not running")
                try:
                    socket.send_fds(self._sock, [pickle.dumps(request)], [worker_end.fileno(), out_w, err_w])
                except OSError as exc:
                    raise LauncherGone(f"launcher not reachable: {exc}") from exc
        except BaseException:
            node_end.close()
            os.close(out_r)
            os.close(err_r)
            raise
        finally:
            worker_end.close()
            os.close(out_w)
            os.close(err_w)
        os.set_blocking(out_r, False)
        os.set_blocking(err_r, False)
        conn = Connection(node_end.detach())
        try:
            conn.send(spec)  # any size: the worker reads it first thing
        except OSError:
            pass  # the worker died at once; its exit is reported like any other
        return conn, out_r, err_r

    def preload(self, modules: list[str]) -> None:
        """Have the launcher import ``modules`` (new worker classes), so workers forked from
        now on have them.

        Raises:
            LauncherGone: the launcher is not running.
        """
        with self._lock:
            if self._sock is None:
                raise LauncherGone("launcher not running")
            try:
                self._sock.send(pickle.dumps(Preload(modules)))
            except OSError as exc:
                raise LauncherGone(f"launcher not reachable: {exc}") from exc

    def receive(self) -> Ready | Launched | Exited | None:
        """One message from the launcher, or None when it is gone."""
        if self._sock is None:
            return None
        try:
            data = self._sock.recv(_MAX_PACKET)
        except OSError:
            return None
        return pickle.loads(data) if data else None

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the pipe (the launcher exits) and reap it."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


# ----------------------------------------------------------------------------------------
# launcher side


def _preload(modules: list[str]) -> None:
    from skalds.worker import runtime  # noqa: F401 - import now so every fork shares it
    from skalds.worker.registry import import_source

    for module in modules:
        import_source(module)


def _import_new(modules: list[str]) -> None:
    from skalds.worker.registry import import_source

    for module in modules:
        try:
            import_source(module)
        except BaseException:  # the node checked the import; a failure here is logged, not fatal
            logger.exception("cannot import worker module %s", module)


def _become_worker(fds: list[int], title: str) -> None:
    """Turn this fresh process (a fork of the launcher that ran nothing since) into the worker
    of the task whose pipes are ``fds``: never returns."""
    code = 70
    fd, out, err = fds
    try:
        # stdout and stderr become the pipes the node reads (and ships as the task's output);
        # line-buffered, so a print() shows up at once.
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(line_buffering=True)
        set_title(title)
        conn = Connection(fd)
        spec: Any = conn.recv()
        from skalds.utils.logging import tag_with_task
        from skalds.worker.runtime import run_worker

        tag_with_task(spec.log_level, spec.task_id)
        code = run_worker(conn, spec)
    except BaseException:
        logging.getLogger(__name__).exception("worker bootstrap failed")
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass  # the node is gone, or the user closed the stream
        os._exit(code)


class _Launcher:
    """The launcher's loop: forks workers on request, and keeps ``prefork`` zygotes ready.

    A **zygote** is a fork of the launcher made ahead of time, which has run nothing but a
    blocking read since: a start hands it the task's pipes (one message) instead of forking
    then, which takes the fork and the child's first page faults off the start path. Each
    zygote becomes exactly one worker. Zygotes are re-forked when the launcher imports new
    worker modules (they would lack them) and while the launcher has nothing else to do, so a
    burst of starts uses the ready ones and then forks directly, as with no zygotes at all.
    """

    def __init__(self, sock: socket.socket, prefork: int, title: str) -> None:
        self.sock = sock
        self.prefork = prefork
        self.zygote_title = title.replace("launcher", "zygote", 1)
        self.wake = os.pipe()
        os.set_blocking(self.wake[0], False)
        os.set_blocking(self.wake[1], False)
        signal.set_wakeup_fd(self.wake[1])
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ)
        self.selector.register(self.wake[0], selectors.EVENT_READ)
        self.idle: dict[int, socket.socket] = {}  # zygote pid -> the launcher's end of its socket
        self.retired: set[int] = set()  # zygotes told to exit, not yet reaped

    def run(self) -> None:
        while True:
            timeout = 0.0 if len(self.idle) < self.prefork else None
            events = self.selector.select(timeout)
            if not events:  # nothing to do: make one zygote ready
                self._spawn_zygote()
                continue
            for key, _ in events:
                if key.fileobj is self.sock:
                    if not self._request():
                        return
                else:
                    try:
                        while os.read(self.wake[0], 512):
                            pass
                    except BlockingIOError:
                        pass
                    self._reap()

    def _request(self) -> bool:
        """Serve one request from the node; False when the node is gone."""
        try:
            msg, fds, _flags, _addr = socket.recv_fds(self.sock, _MAX_PACKET, 3)
        except ConnectionResetError:
            return False  # the node closed its end with replies unread
        if not msg:
            return False  # the node closed its end
        request: Launch | Preload = pickle.loads(msg)
        if isinstance(request, Preload):
            _import_new(request.modules)
            self._retire_zygotes()  # forked before the import: they lack the new modules
            return True
        pid = self._from_zygote(fds, request.title)
        if pid is None:
            pid = self._fork(lambda: _become_worker(fds, request.title))
        for fd in fds:
            os.close(fd)
        self.sock.send(pickle.dumps(Launched(request.launch_id, pid)))
        return True

    def _from_zygote(self, fds: list[int], title: str) -> int | None:
        """Hand the task to a ready zygote; its pid, or None if none took it."""
        while self.idle:
            pid, channel = self.idle.popitem()
            try:
                socket.send_fds(channel, [title.encode()], fds)
                return pid
            except OSError:  # it died meanwhile; its exit is reaped quietly
                self.retired.add(pid)
            finally:
                channel.close()
        return None

    def _spawn_zygote(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = self._fork(lambda: self._zygote(theirs, ours))
        finally:
            theirs.close()
        self.idle[pid] = ours

    def _zygote(self, channel: socket.socket, launcher_end: socket.socket) -> None:
        launcher_end.close()  # so that the launcher closing its end is seen here
        set_title(self.zygote_title)
        from skalds.worker.runtime import rehearse

        try:
            rehearse()
        except BaseException:  # a zygote that could not rehearse still becomes a worker
            logger.exception("zygote rehearsal failed")
        try:
            msg, fds, _flags, _addr = socket.recv_fds(channel, _MAX_PACKET, 3)
        except OSError:
            msg, fds = b"", []
        channel.close()
        if not msg:
            os._exit(0)  # retired (or the launcher is gone) before it was needed
        _become_worker(fds, msg.decode())

    def _retire_zygotes(self) -> None:
        for pid, channel in self.idle.items():
            channel.close()  # the zygote reads the end of its socket and exits
            self.retired.add(pid)
        self.idle.clear()

    def _fork(self, child: Callable[[], None]) -> int:
        """Fork; the child drops the launcher's own resources, dies with the launcher and
        runs ``child`` (which never returns)."""
        launcher_pid = os.getpid()
        pid = os.fork()
        if pid != 0:
            return pid
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for channel in self.idle.values():  # or a retired zygote would never see its end
                channel.close()
            self.selector.close()
            self.sock.close()
            os.close(self.wake[0])
            os.close(self.wake[1])
            die_with_parent()
            # Own process group: Ctrl-C or a group-wide SIGTERM goes to the node, which stops
            # its workers in order, instead of cutting every worker off at once.
            os.setpgid(0, 0)
            if os.getppid() != launcher_pid:  # the launcher died before prctl took effect
                os._exit(70)
            child()
        finally:
            os._exit(70)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.retired or pid in self.idle:
                # A zygote that was never a worker: the node never heard of it.
                self.retired.discard(pid)
                channel = self.idle.pop(pid, None)
                if channel is not None:
                    channel.close()
                continue
            self.sock.send(pickle.dumps(Exited(pid, os.waitstatus_to_exitcode(status))))


def main(argv: list[str]) -> None:
    """Entry point: ``python -m skalds.node.launcher FD PRELOAD_JSON LOG_LEVEL TITLE PREFORK``."""
    fd, preload, level, title = int(argv[1]), json.loads(argv[2]), argv[3], argv[4]
    prefork = int(argv[5]) if len(argv) > 5 else 0
    die_with_parent()
    set_title(title)
    # The node decides when we stop (it closes our socket); a signal sent to the whole process
    # group (Ctrl-C, `timeout`, a service manager) must not cut its workers off early.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from skalds.utils.logging import configure_logging

    configure_logging(level)
    sock = socket.socket(fileno=fd)
    try:
        _preload(preload)
    except BaseException:
        logger.exception("cannot import worker modules %s", preload)
        sys.exit(2)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or every fork would repeat what the imports printed
    gc.collect()
    gc.freeze()  # keep the preloaded objects out of the children's GC passes: fewer COW pages
    launcher = _Launcher(sock, prefork, title)
    sock.send(pickle.dumps(Ready(os.getpid())))
    launcher.run()


if __name__ == "__main__":
    main(sys.argv)

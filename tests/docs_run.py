"""Runs the shell examples and transcripts of the manual as a reader would, in a folder of
the test's own, with the ports they name (6280...) swapped for free ones on loopback.

A transcript is a ``text`` block of ``$ COMMAND`` lines, each followed by what it printed.
Its output is compared by shape: every number stands for any number, and runs of blanks
are one blank (a measured 0.413 s, or a column's width, differs from run to run), and a
line ``...`` stands for any lines. A ``qmqp-sink`` command is a server: it runs in the
background until the test stops it, as in the reader's other terminal.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# The examples' ports: the sink of the options page, and the sinks of qmqp-sink's examples.
EXAMPLE_PORT = re.compile(r"(?<=:)(628[0-3])\b")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
WAIT = 30.0  # a bound on waits for a sink to listen or to stop, never a timed assertion
COMMAND_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def shape(lines: list[str]) -> list[str]:
    return [" ".join(NUMBER.sub("#", line).split()) for line in lines]


def same_shape(said: list[str], printed: list[str]) -> bool:
    """Whether the output has the transcript's shape; ``...`` matches any lines."""
    pattern = "".join(".*?" if line == "..." else re.escape(line + "\n")
                      for line in shape(said))
    return re.fullmatch(pattern, "".join(line + "\n" for line in shape(printed)), re.S) is not None


def commands(block: str) -> list[str]:
    """The block's command lines, a line continued with a backslash joined to the next."""
    return [line for line in block.replace("\\\n", "").splitlines() if line.strip()]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> str:
        """Ctrl-C, as the reader stops it; what it printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log.read_text(errors="replace")


@dataclass
class Shell:
    """A reader's shell: a folder, PATH with this environment's commands first, and the
    example ports mapped to free ones (the same example port, the same free one)."""

    folder: Path
    ports: dict[str, str] = field(default_factory=dict)
    servers: list[Server] = field(default_factory=list)

    def local(self, command: str) -> str:
        def swap(match: re.Match[str]) -> str:
            return self.ports.setdefault(match[1], str(free_port()))

        return EXAMPLE_PORT.sub(swap, command)

    def env(self) -> dict[str, str]:
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        return {**os.environ, "PATH": path}

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", "-c", self.local(command)], cwd=self.folder, env=self.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", timeout=COMMAND_TIMEOUT, check=False)

    def serve(self, command: str) -> Server:
        """Start a sink in the background and wait until it listens on its port."""
        command = self.local(command.removesuffix("&").strip())
        log = self.folder / f"server-{len(self.servers)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(["sh", "-c", f"exec {command}"], cwd=self.folder,
                                       env=self.env(), stdout=out, stderr=subprocess.STDOUT)
        server = Server(process, log)
        self.servers.append(server)
        port = int(re.findall(r":(\d+)(?:\s|$)", command)[-1])  # its endpoint's
        deadline = time.monotonic() + WAIT
        while not _listens(port):
            assert process.poll() is None, f"{command}: exited\n{log.read_text()}"
            assert time.monotonic() < deadline, f"{command}: not listening on {port}"
            time.sleep(0.02)
        return server

    def block(self, block: str, statuses: tuple[int, ...] = (0,)) -> None:
        """Every command of a shell block, each to exit with one of the statuses; a
        `COMMAND &` is a server."""
        for command in commands(block):
            if command.endswith("&"):
                self.serve(command)
            else:
                done = self.run(command)
                assert done.returncode in statuses, (
                    f"{command}: exit {done.returncode}\n{done.stdout}")

    def transcript(self, block: str) -> None:
        """Each ``$`` command run; its output must have the shape of the lines after it."""
        for command, said in steps(block):
            if command.startswith("qmqp-sink "):
                self.serve(command)
                continue
            printed = self.run(command).stdout.splitlines()
            assert same_shape(said, printed), (
                f"$ {command}\nthe manual says:\n" + "\n".join(said)
                + "\nit printed:\n" + "\n".join(printed))

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def steps(block: str) -> Iterator[tuple[str, list[str]]]:
    command: str | None = None
    said: list[str] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            if command is not None:
                yield command, said
            command, said = line[2:], []
        else:
            said.append(line)
    if command is not None:
        yield command, said


def _listens(port: int) -> bool:
    """Whether a socket listens on the TCP port, read from the kernel's tables: a probe
    connection would count in the sink's summary."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in rows.readlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    return False


@contextmanager
def shell(folder: Path) -> Iterator[Shell]:
    """A Shell whose servers are stopped however the test ends."""
    reader = Shell(folder)
    try:
        yield reader
    finally:
        reader.stop()

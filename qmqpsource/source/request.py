"""The request bytes of every message of a run, built once, varied cheaply where asked.

Most runs send one request over and over: ``fixed`` holds it, and the runner sends
that. Per-message content (--unique-message-id, -N) is built from parts prepared
once, so that a message costs one join. No I/O beyond reading -F's file once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from qmqpsource.errors import ConfigError
from qmqpsource.protocol import encode_request, netstring
from qmqpsource.source.config import SourceConfig
from qmqpsource.source.message import (
    build_message,
    default_address,
    mail_date,
    recipient_list,
    system_hostname,
    x_lines,
)

__all__ = [
    "MessageFileError",
    "RequestFactory",
    "load_message_file",
    "message_file_size",
    "wire",
]

SEQ_HEADER = "X-Qmqpsource-Seq"
# -F of a file that says it is empty (those in /proc do) is read up to this.
UNSIZED_LIMIT = 1 << 20


class MessageFileError(ConfigError):
    """message_file (-F) names a file that cannot be read; ``str()`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="message_file")


def wire(text: str) -> bytes:
    """Arguments go on the wire as the bytes they were given, UTF-8 or not."""
    return text.encode("utf-8", "surrogateescape")


def message_file_size(path: str | os.PathLike[str]) -> int:
    """-F's size, for the checks before the run. Only a regular file will do: a device
    (/dev/zero) never ends, and a FIFO would keep the run waiting for a writer."""
    from qmqpsource.infile import InputError, regular_size  # here: only -F needs it

    try:
        return regular_size(path)
    except InputError as exc:
        raise MessageFileError(f"cannot read message file {path}: {exc}") from None


def load_message_file(path: str | os.PathLike[str]) -> bytes:
    """-F: the file as QMQP sends it, CRLF line ends turned into LF; read no further
    than the size it had (checked against free memory before the run)."""
    from qmqpsource.infile import InputError, read_limited, regular_size

    try:
        limit = max(regular_size(path), UNSIZED_LIMIT)
        data = read_limited(path, limit, regular_only=True)
    except InputError as exc:
        raise MessageFileError(f"cannot read message file {path}: {exc}") from None
    return data.replace(b"\r\n", b"\n")


def _drop_header(message: bytes, name: bytes) -> bytes:
    """The message without its own ``name:`` header lines (and their continuations)."""
    head, sep, body = message.partition(b"\n\n")
    if not sep:
        head, body = message, b""
    kept: list[bytes] = []
    skipping = False
    lowered = name.lower() + b":"
    for line in head.split(b"\n"):
        if skipping and line[:1] in (b" ", b"\t"):
            continue
        skipping = line.lower().startswith(lowered)
        if not skipping:
            kept.append(line)
    return b"\n".join(kept) + sep + body


@dataclass(frozen=True, slots=True)
class _Parts:
    """What a per-message request is made of."""

    head: bytes  # header lines before Message-Id (generated messages)
    after_id: bytes  # header lines after Message-Id (Subject)
    body: bytes  # the rest, long enough to fill -l (generated) or the -F content
    sender: bytes
    recipient: bytes
    recipients: tuple[bytes, ...]
    id_host: bytes
    pid: int


class RequestFactory:
    """Requests for a run: ``fixed`` when every message is the same, else ``build(seq)``."""

    __slots__ = ("_length", "_parts", "config", "fixed")

    def __init__(self, config: SourceConfig, *, date: str | None = None,
                 pid: int | None = None) -> None:
        self.config = config
        hostname = config.myhostname or system_hostname()
        address = default_address(hostname)
        sender = config.sender if config.sender is not None else address
        recipient = config.recipient if config.recipient is not None else address
        pid = os.getpid() if pid is None else pid
        date = date or mail_date()
        recipients = tuple(wire(r) for r in recipient_list(recipient, config.recipients))
        self._length = config.length
        self.fixed: bytes | None = None
        varies = config.unique_message_id or config.number_recipients
        if config.message_file is not None:
            content = load_message_file(config.message_file)
            if config.unique_message_id:
                content = _drop_header(content, b"Message-Id")
            message = content
            head = after_id = b""
            body = content
        else:
            subject = f"Subject: {config.subject}\n" if config.subject is not None else ""
            head = wire(f"From: <{sender}>\nTo: <{recipient}>\nDate: {date}\n")
            after_id = wire(subject)
            message = build_message(sender, recipient, config.length, hostname, date=date,
                                    pid=pid, subject=config.subject)
            # The X lines after the headers, whatever the headers' length: enough to fill
            # -l even if the per-message headers were empty.
            body = x_lines(config.length)
        self._parts = _Parts(head, after_id, body, wire(sender), wire(recipient), recipients,
                             wire(hostname), pid)
        if not varies:
            self.fixed = encode_request(message, wire(sender), recipients)

    @property
    def size(self) -> int:
        """Bytes of a request: every one's, or the first one's where they vary by a few
        digits (RunStats counts the difference per message)."""
        return len(self.fixed if self.fixed is not None else self.build(0))

    def build(self, seq: int) -> bytes:
        """The request of the message numbered ``seq`` (run-wide, from 0)."""
        if self.fixed is not None:
            return self.fixed
        parts = self._parts
        config = self.config
        if config.unique_message_id:
            ids = b"Message-Id: <%d.%d@%s>\n%s: %d\n" % (
                parts.pid, seq, parts.id_host, SEQ_HEADER.encode(), seq)
        else:
            ids = b"Message-Id: <%d@%s>\n" % (parts.pid, parts.id_host)
        if config.message_file is not None:
            message = (ids + parts.body) if config.unique_message_id else parts.body
        else:
            text = bytearray(parts.head + ids + parts.after_id + b"\n")
            text += parts.body[: max(0, self._length - len(text))]
            del text[self._length :]
            text[-1] = 0x0A
            message = bytes(text)
        if config.number_recipients:
            first = seq * config.recipients + 1
            recipients: tuple[bytes, ...] | list[bytes] = [
                b"%d%s" % (first + n, parts.recipient) for n in range(config.recipients)
            ]
        else:
            recipients = parts.recipients
        inner = b"".join([netstring(message), netstring(parts.sender),
                          *map(netstring, recipients)])
        return netstring(inner)

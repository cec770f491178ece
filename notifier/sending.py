"""Where a dispatcher's transport runs: in its own process for network transports, so a message
goes out while the next one is rendered, or in the dispatcher's process for local ones.

An SMTP hand-over is four round trips of waiting plus smtplib's own Python. On a thread of the
dispatcher's process that waiting is no help: each reply has to win the interpreter lock back
from the rendering thread, which gives it up only every switch interval (5 ms), and a message
took 20 ms instead of 1. In a child process it costs the dispatcher one pipe write and one read.

The child is `python -m notifier.sending FD`: it imports the transports and nothing else (not
Flask, not the database), reads the transport (pickled, not yet connected) and then one message
after another from a private socket pair, and answers each in order with what the server said.
It ends when the dispatcher closes its end, or dies with it.
"""

from __future__ import annotations

import logging
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from multiprocessing.connection import Connection
from typing import Protocol

from notifier.transports import Outgoing, Receipt, Transport, TransportError

log = logging.getLogger(__name__)

Answer = tuple[Receipt | TransportError, float]  # what the transport said, and how long it took


class SendingFailed(RuntimeError):
    """The transport broke in a way that says nothing about the message (a bug, a dead sending
    process): the round ends unrecorded, and its messages are sent again when their leases end."""


class Sending(Protocol):
    """Messages handed over in order; their answers taken back in the same order."""

    def submit(self, mail: Outgoing) -> None: ...

    def ready(self) -> bool:
        """The oldest message handed over has its answer."""
        ...

    def take(self) -> Answer: ...

    def close(self) -> None: ...


def for_transport(transport: Transport) -> Sending:
    """Its own process for a transport that waits on the network; this one for the others."""
    if getattr(transport, "sends_apart", False):
        return SendingProcess(transport)
    return SendingHere(transport)


def _answer(transport: Transport, mail: Outgoing) -> Answer:
    started = time.perf_counter()
    try:
        reply: Receipt | TransportError = transport.send(mail)
    except TransportError as failure:
        reply = failure
    return reply, time.perf_counter() - started


class SendingHere:
    """At once, in this process: files and memory have no network to wait on."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._answers: deque[Answer] = deque()

    def submit(self, mail: Outgoing) -> None:
        self._answers.append(_answer(self.transport, mail))

    def ready(self) -> bool:
        return bool(self._answers)

    def take(self) -> Answer:
        return self._answers.popleft()

    def close(self) -> None:
        self.transport.close()


class SendingProcess:
    """The transport in a child process; at most a few messages are on their way at a time."""

    def __init__(self, transport: Transport) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self._process = subprocess.Popen(  # noqa: S603 (our interpreter, our module)
                [sys.executable, "-m", "notifier.sending", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        self._connection = Connection(ours.detach())
        self._connection.send(transport)
        self._waiting = 0

    def submit(self, mail: Outgoing) -> None:
        try:
            self._connection.send(mail)
        except OSError as error:
            raise self._ended() from error
        self._waiting += 1

    def ready(self) -> bool:
        return self._waiting > 0 and self._connection.poll()

    def take(self) -> Answer:
        try:
            answer: Answer | SendingFailed = self._connection.recv()
        except (EOFError, OSError) as error:
            raise self._ended() from error
        self._waiting -= 1
        if isinstance(answer, SendingFailed):
            raise answer
        return answer

    def _ended(self) -> SendingFailed:
        code = self._process.poll()
        return SendingFailed(
            f"the sending process ended (exit status {code}) with {self._waiting} "
            "message(s) handed over and unanswered"
        )

    def close(self) -> None:
        """Let the child finish what it holds, close its connection to the server, and end."""
        self._connection.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log.warning("the sending process did not end; killing it")
            self._process.kill()
            self._process.wait()


def _serve(connection: Connection) -> None:
    # The dispatcher decides when sending stops: a Ctrl-C or a stop signal to the whole process
    # group must not cut a message off mid-conversation; the closed connection ends us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    transport: Transport = connection.recv()
    try:
        while True:
            try:
                mail: Outgoing = connection.recv()
            except (EOFError, OSError):
                return
            try:
                answer: Answer | SendingFailed = _answer(transport, mail)
            except Exception as error:  # a bug in the transport: the dispatcher sees it
                answer = SendingFailed(f"{type(error).__name__}: {error}")
            try:
                connection.send(answer)
            except (pickle.PicklingError, TypeError) as error:
                connection.send(SendingFailed(f"the answer cannot be passed back: {error}"))
            except OSError:
                return
    finally:
        transport.close()


if __name__ == "__main__":
    # Run as `notifier.sending` proper, not as `__main__`: what is passed back names its classes
    # by their module, and the dispatcher knows them as `notifier.sending.SendingFailed`.
    from notifier.sending import _serve as serve

    serve(Connection(int(sys.argv[1])))

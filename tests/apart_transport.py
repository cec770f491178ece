"""A transport that runs in a sending process and breaks there with a bug of its own (not a
TransportError): importable by the child, which unpickles it by this module's name."""

from __future__ import annotations

from notifier.transports import Outgoing, Receipt


class BuggyApartTransport:
    name = "buggy"
    sends_apart = True

    def send(self, mail: Outgoing) -> Receipt:
        raise KeyError(f"no route for {mail.message_id}")

    def close(self) -> None:
        pass

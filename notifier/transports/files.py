"""The default transport: each message becomes an .eml file in a folder, for one box and demos."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from notifier.transports import Outgoing, Receipt, TransientFailure


class FileTransport:
    name = "file"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def from_url(cls, url: str) -> FileTransport:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ValueError("a file mail URL names a local folder: file:///absolute/path")
        return cls(Path(unquote(parts.path)))

    def send(self, mail: Outgoing) -> Receipt:
        """Write atomically; a second send of the same Message-ID lands beside the first."""
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", mail.message_id.strip("<>"))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".incoming-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(mail.raw)
                handle.flush()
                os.fsync(handle.fileno())
            target = self._free_name(stem)
            os.link(temporary, target)  # fails rather than overwrite an earlier copy
            os.unlink(temporary)
        except OSError as error:
            raise TransientFailure(f"cannot write to {self.folder}: {error}") from error
        return Receipt(f"written to {target}")

    def _free_name(self, stem: str) -> Path:
        target = self.folder / f"{stem}.eml"
        copy = 1
        while target.exists():
            copy += 1
            target = self.folder / f"{stem}.{copy}.eml"
        return target

    def close(self) -> None:
        pass

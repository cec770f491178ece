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
        temporary: str | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".incoming-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(mail.raw)
                handle.flush()
                os.fsync(handle.fileno())
            target = self._link_free_name(temporary, stem)
            self._sync_folder()
        except OSError as error:
            raise TransientFailure(f"cannot write to {self.folder}: {error}") from error
        finally:
            if temporary is not None and os.path.exists(temporary):
                os.unlink(temporary)
        return Receipt(f"written to {target}")

    def _link_free_name(self, temporary: str, stem: str) -> Path:
        """Give the file its name; a name already taken (an earlier send) gets a sibling."""
        for copy in range(1, 1000):
            target = self.folder / (f"{stem}.eml" if copy == 1 else f"{stem}.{copy}.eml")
            try:
                os.link(temporary, target)  # never overwrites
            except FileExistsError:
                continue
            return target
        raise OSError(f"1000 copies of {stem} already; refusing to write more")

    def _sync_folder(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        pass

"""notifier: keeps cross-border buyers informed after they pay."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from notifier.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    """`create_app` on first use: a process that needs one module (the sending process needs
    only the transports) does not load Flask, SQLAlchemy and Babel with the package."""
    if name == "create_app":
        from notifier.app import create_app

        return create_app
    raise AttributeError(f"module 'notifier' has no attribute {name!r}")

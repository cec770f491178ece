"""notifier: keeps cross-border buyers informed after they pay."""

from notifier.app import create_app

__all__ = ["create_app"]

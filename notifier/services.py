"""The long-lived objects one app needs, built once by the factory and shared by every request."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from notifier.clock import Clock
from notifier.intake import PendingStore
from notifier.links import BuyerLinks
from notifier.rendering import Renderer
from notifier.shop_directory import ShopDirectory


@dataclass
class Services:
    engine: Engine
    sessions: sessionmaker[Session]
    # For transactions that only read (a shop lookup): on SQLite they do not wait to write.
    readers: sessionmaker[Session]
    clock: Clock
    renderer: Renderer
    links: BuyerLinks
    # Stores deliveries as pending (NOTIFIER_APPLY=deferred), many requests to one commit.
    pending: PendingStore
    # The shops webhooks name, with their signing secrets, kept a few seconds.
    shops: ShopDirectory
    # Set after a commit that planned mail, so an in-process dispatcher sends without waiting.
    wake_dispatcher: threading.Event = field(default_factory=threading.Event)

    @property
    def read_engine(self) -> Engine:
        """The engine behind `readers`, for lookups in SQLAlchemy Core."""
        bound: Engine = self.readers.kw["bind"]
        return bound


def services() -> Services:
    found: Services = current_app.extensions["notifier"]
    return found

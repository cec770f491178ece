"""The application factory: configuration, database, renderer and blueprints, wired once."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask

from notifier import config, ledger, logs, metrics, problems
from notifier.clock import Clock, SystemClock
from notifier.db import make_engine, make_sessionmaker, read_only
from notifier.intake import PendingStore
from notifier.links import BuyerLinks
from notifier.rendering import Renderer
from notifier.services import Services
from notifier.shop_directory import ShopDirectory


def create_app(test_config: dict[str, Any] | None = None, *, clock: Clock | None = None) -> Flask:
    app = Flask(
        "notifier",
        instance_path=os.environ.get("NOTIFIER_INSTANCE_PATH") or None,
        instance_relative_config=True,
    )
    app.config.update(config.DEFAULTS)
    app.config.from_prefixed_env("NOTIFIER")
    if test_config:
        app.config.update(test_config)
    if app.config["APPLY"] not in config.APPLY_MODES:
        raise ValueError(f"NOTIFIER_APPLY must be one of {', '.join(config.APPLY_MODES)}")
    os.makedirs(app.instance_path, exist_ok=True)
    for key, value in config.instance_defaults(app.instance_path).items():
        if not app.config.get(key):
            app.config[key] = value
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = config.instance_secret_key(Path(app.instance_path))

    engine = make_engine(
        app.config["DATABASE_URL"],
        pool_size=int(app.config["DATABASE_POOL_SIZE"]),
        max_overflow=int(app.config["DATABASE_MAX_OVERFLOW"]),
    )
    sessions = make_sessionmaker(engine)
    metrics.install(sessions)  # before the ledger's hook, which consumes the notes it counts
    ledger.install(sessions)
    clock = clock or SystemClock()
    app.extensions["notifier"] = Services(
        engine=engine,
        sessions=sessions,
        readers=make_sessionmaker(read_only(engine)),
        clock=clock,
        renderer=Renderer(
            Path(app.config["TEMPLATES_PATH"]), Path(app.config["TRANSLATIONS_PATH"])
        ),
        links=BuyerLinks(
            app.config["SECRET_KEY"],
            app.config["PUBLIC_URL"],
            clock,
            survey_valid=timedelta(days=int(app.config["SURVEY_LINK_DAYS"])),
            unsubscribe_valid=timedelta(days=int(app.config["UNSUBSCRIBE_LINK_DAYS"])),
        ),
        pending=PendingStore(engine),
        shops=ShopDirectory(
            read_only(engine), keep_seconds=float(app.config["SHOP_CACHE_SECONDS"])
        ),
    )
    app.extensions["notifier"].shops.watch(sessions)

    problems.register(app)
    from notifier import api, buyer, console, health, openapi, provider_hooks, webhooks
    from notifier.cli import notifier_group

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(provider_hooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(api.bp)
    buyer.init_app(app)
    console.init_app(app)
    app.cli.add_command(notifier_group)
    logs.install(app)
    if not app.debug:
        logs.configure(json_lines=str(app.config["LOG_FORMAT"]).lower() == "json")
    return app

"""Shops as webhooks see them: read once, kept NOTIFIER_SHOP_CACHE_SECONDS, forgotten at once
when this app commits a change; a change from another process counts once the time is up.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from notifier import shops
from notifier.db import make_engine, read_only
from notifier.models import Platform, Shop
from notifier.shop_directory import ShopDirectory

from .conftest import SHOPIFY_SECRET, START, post_shopify, services, shopify_order

ROTATED = "shpss_rotated_0123456789abcdef"


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic() -> Monotonic:
    return Monotonic()


@pytest.fixture
def directory(app: Flask, monotonic: Monotonic) -> ShopDirectory:
    """The app's directory, with a clock the test moves: as the app wires its own."""
    svc = services(app)
    svc.shops = ShopDirectory(read_only(svc.engine), keep_seconds=5, monotonic=monotonic)
    svc.shops.watch(svc.sessions)
    return svc.shops


@pytest.fixture
def elsewhere(database_url: str) -> Iterator[sa.Engine]:
    """Another process's connection to the same database (a `notifier shop set` in a shell)."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def set_secrets_elsewhere(engine: sa.Engine, slug: str, secrets: list[str]) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.update(Shop.__table__).where(Shop.slug == slug).values(webhook_secrets=secrets)
        )


def test_a_shop_is_read_once_and_kept_until_its_time_is_up(
    directory: ShopDirectory, shopify_shop: Shop, elsewhere: sa.Engine, monotonic: Monotonic
) -> None:
    found = directory.find("domain", "lumen.myshopify.com")
    assert found is not None
    assert (found.id, found.slug, found.platform) == (shopify_shop.id, "lumen", Platform.SHOPIFY)
    assert found.webhook_secrets == (SHOPIFY_SECRET,)
    set_secrets_elsewhere(elsewhere, "lumen", [ROTATED])
    monotonic.now += 4.9
    kept = directory.find("domain", "lumen.myshopify.com")
    assert kept is not None
    assert kept.webhook_secrets == (SHOPIFY_SECRET,)
    monotonic.now += 0.2
    fresh = directory.find("domain", "lumen.myshopify.com")
    assert fresh is not None
    assert fresh.webhook_secrets == (ROTATED,)
    assert directory.find("slug", "lumen") == fresh


def test_a_change_this_app_commits_counts_at_once(
    app: Flask, directory: ShopDirectory, shopify_shop: Shop
) -> None:
    assert directory.find("slug", "lumen") is not None
    with services(app).sessions.begin() as session:
        shop = session.get(Shop, shopify_shop.id)
        assert shop is not None
        shops.update(session, shop, "secret", ROTATED)
    found = directory.find("slug", "lumen")
    assert found is not None
    assert found.webhook_secrets == (ROTATED, SHOPIFY_SECRET)


def test_a_change_rolled_back_forgets_nothing_and_changes_nothing(
    app: Flask, directory: ShopDirectory, shopify_shop: Shop, elsewhere: sa.Engine
) -> None:
    assert directory.find("slug", "lumen") is not None
    set_secrets_elsewhere(elsewhere, "lumen", [ROTATED])  # not yet due to count
    with services(app).sessions() as session:
        shop = session.get(Shop, shopify_shop.id)
        assert shop is not None
        shops.update(session, shop, "locale", "de")
        session.flush()
        session.rollback()
    with services(app).sessions.begin():
        pass  # a later commit that changed no shop
    found = directory.find("slug", "lumen")
    assert found is not None
    assert found.webhook_secrets == (SHOPIFY_SECRET,)  # still the kept one


def test_an_unknown_shop_is_not_kept(
    directory: ShopDirectory, elsewhere: sa.Engine, monotonic: Monotonic
) -> None:
    assert directory.find("slug", "atelier") is None
    with elsewhere.begin() as connection:
        connection.execute(
            sa.insert(Shop.__table__).values(
                slug="atelier",
                platform=Platform.STANDARD,
                webhook_secrets=["whsec_" + "A" * 32],
                sender="Atelier <a@atelier.example>",
                locale="de",
                timezone="Europe/Berlin",
                settings={},
                tracking_secrets={},
                created_at=START,
            )
        )
    found = directory.find("slug", "atelier")  # at once: no time has passed
    assert found is not None
    assert found.platform is Platform.STANDARD


def test_a_webhook_signed_with_a_secret_removed_elsewhere_is_refused_once_the_time_is_up(
    client: FlaskClient,
    directory: ShopDirectory,
    shopify_shop: Shop,
    elsewhere: sa.Engine,
    monotonic: Monotonic,
) -> None:
    assert post_shopify(client, shopify_order(id=1)).status_code == 200
    set_secrets_elsewhere(elsewhere, "lumen", [ROTATED])
    assert post_shopify(client, shopify_order(id=2)).status_code == 200  # within the time
    monotonic.now += 5
    refused = post_shopify(client, shopify_order(id=3))
    assert refused.status_code == 401
    assert refused.mimetype == "application/problem+json"
    assert post_shopify(client, shopify_order(id=4), secret=ROTATED).status_code == 200


def test_keeping_nothing_reads_the_shop_every_time(
    app: Flask, shopify_shop: Shop, elsewhere: sa.Engine
) -> None:
    directory = ShopDirectory(read_only(services(app).engine), keep_seconds=0)
    assert directory.find("slug", "lumen") is not None
    set_secrets_elsewhere(elsewhere, "lumen", [ROTATED])
    found = directory.find("slug", "lumen")
    assert found is not None
    assert found.webhook_secrets == (ROTATED,)

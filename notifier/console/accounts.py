"""Agents: who may sign in to the console, with which password, and which shops they see.

Passwords are argon2id hashes (argon2-cffi's RFC 9106 low-memory profile). A sign-in for an
unknown email still verifies a hash, so a wrong email and a wrong password take as long. Failures
are counted per email and address; past the limit, sign-ins from there wait out the window.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from notifier.models import Agent, LoginFailure, Shop

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
# A few of the passwords every guessing list starts with, in forms long enough to pass the
# length rule; anything built on them is refused too.
COMMON_STEMS = (
    "password",
    "passwort",
    "123456",
    "qwerty",
    "azerty",
    "letmein",
    "welcome",
    "iloveyou",
    "admin",
    "changeme",
    "abc123",
    "111111",
    "monkey",
    "dragon",
    "football",
    "baseball",
    "sunshine",
    "princess",
    "notifier",
)

_hasher = PasswordHasher()


class AccountError(ValueError):
    """A clear reason an agent cannot be added as asked."""


def normalize_email(email: str) -> str:
    cleaned = email.strip().lower()
    local, at, domain = cleaned.rpartition("@")
    if not at or not local or "." not in domain or any(ch.isspace() for ch in cleaned):
        raise AccountError(f"{email!r} is not an email address")
    if len(cleaned) > 320:
        raise AccountError("an email address is at most 320 characters")
    return cleaned


def password_problem(password: str, email: str) -> str | None:
    """Why a password would be easy to guess, or None when it will do."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"the password is too long: at most {MAX_PASSWORD_LENGTH} characters"
    if len(set(password)) < 5:
        return "the password repeats too few characters: use at least 5 different ones"
    lowered = password.lower()
    local = email.partition("@")[0]
    if len(local) >= 3 and local in lowered:
        return "the password contains the email address: choose one that does not"
    if any(stem in lowered for stem in COMMON_STEMS):
        return "the password is built on a commonly guessed one: choose another"
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def fingerprint(agent: Agent) -> str:
    """Ties a session to the password it was opened with: a new password ends old sessions."""
    return hashlib.sha256(agent.password_hash.encode()).hexdigest()[:32]


def same_fingerprint(agent: Agent, value: object) -> bool:
    return isinstance(value, str) and hmac.compare_digest(value, fingerprint(agent))


def add_agent(
    session: Session, email: str, password: str, shop_slugs: list[str], now: datetime
) -> Agent:
    address = normalize_email(email)
    if (problem := password_problem(password, address)) is not None:
        raise AccountError(problem)
    if session.scalar(select(Agent.id).where(Agent.email == address)) is not None:
        raise AccountError(f"an agent {address} exists already")
    shops = list(session.scalars(select(Shop).where(Shop.slug.in_(shop_slugs)).order_by(Shop.slug)))
    if missing := sorted(set(shop_slugs) - {shop.slug for shop in shops}):
        raise AccountError(f"no shop named {', '.join(missing)}")
    agent = Agent(
        email=address,
        password_hash=hash_password(password),
        all_shops=not shop_slugs,
        created_at=now,
        shops=shops,
    )
    session.add(agent)
    return agent


@functools.cache
def _decoy_hash() -> str:
    """Verified against when the email is unknown, so that case costs what a real check costs."""
    return _hasher.hash("no agent has this password, it only takes time")


def _verified(agent: Agent | None, password: str) -> bool:
    try:
        return _hasher.verify(agent.password_hash if agent else _decoy_hash(), password) and (
            agent is not None
        )
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Throttle:
    max_failures: int
    window: timedelta


@dataclass(frozen=True)
class SignIn:
    agent: Agent | None
    # Set when this email and address have failed too often: how long until they may try again.
    retry_after: timedelta | None = None


def sign_in(
    session: Session, email: str, password: str, address: str, now: datetime, throttle: Throttle
) -> SignIn:
    """Check a sign-in in the caller's transaction, recording a failure for the throttle."""
    key, address = email.strip().lower()[:320], address[:64]
    since = now - throttle.window
    failures = session.execute(
        select(func.count(), func.min(LoginFailure.failed_at)).where(
            LoginFailure.email == key,
            LoginFailure.address == address,
            LoginFailure.failed_at > since,
        )
    ).one()
    if failures[0] >= throttle.max_failures:
        return SignIn(None, retry_after=failures[1] + throttle.window - now)
    agent = session.scalar(select(Agent).where(Agent.email == key))
    if not _verified(agent, password):
        session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= since))
        session.add(LoginFailure(email=key, address=address, failed_at=now))
        return SignIn(None)
    assert agent is not None
    session.execute(
        delete(LoginFailure).where(LoginFailure.email == key, LoginFailure.address == address)
    )
    if _hasher.check_needs_rehash(agent.password_hash):
        agent.password_hash = hash_password(password)
    return SignIn(agent)


@dataclass(frozen=True)
class Viewer:
    """The signed-in agent, as each request needs it: who, and which shops."""

    id: int
    email: str
    all_shops: bool
    shop_ids: frozenset[int]

    @classmethod
    def of(cls, agent: Agent) -> Viewer:
        return cls(agent.id, agent.email, agent.all_shops, frozenset(s.id for s in agent.shops))

    def sees(self, shop_id: int) -> bool:
        return self.all_shops or shop_id in self.shop_ids

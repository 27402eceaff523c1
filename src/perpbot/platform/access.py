"""Users and access: argon2 passwords, short-lived JWTs, revocable API keys, roles, login rate
limit and lockout, audit rows.

* Passwords: argon2id through ``pwdlib`` (``PasswordHash.recommended()``), 10-256 characters.
  An unknown user name costs one argon2 verification too (no timing oracle for names).
* Access tokens: JWT (PyJWT, HS256) with ``sub`` (user id), ``role``, ``iat``, ``exp`` (default
  15 min), ``iss`` ``perpbot``. Every request re-reads the user: a disabled user or a lowered
  role takes effect at once, whatever the token says.
* API keys for bots: ``pbk_`` + 43 URL-safe characters (256 random bits), shown once; only the
  SHA-256 digest is stored. A key's role is at most its owner's; revocation is immediate.
* Login limits: at most ``rate_limit`` attempts per client address per ``rate_window`` seconds
  (:class:`RateLimited`, HTTP 429), and ``max_failures`` consecutive wrong passwords lock the
  account for ``lockout_s`` seconds (:class:`LockedOut`, HTTP 423), persisted in the database.
* Audit: logins (``login_ok``, ``login_failed``, ``login_locked``, ``login_rate_limited``) and
  every change (``user_created``, ``role_changed``, ``api_key_created`` ...) get a row
  (:class:`~perpbot.platform.models.AuditEvent`) with actor, target and client; never a secret.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
import sqlalchemy as sa
from pwdlib import PasswordHash
from sqlalchemy.orm import Session

from perpbot.platform.db import utcnow
from perpbot.platform.models import PROFILE_NAMES, ROLES, ApiKey, AuditEvent, User
from perpbot.platform.wallet import write_session

RANK = {"viewer": 0, "trader": 1, "admin": 2}
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")  # one line, no control characters (no NUL)
ISSUER = "perpbot"
API_KEY_PREFIX = "pbk_"


class AccessError(Exception):
    """Authentication failed (HTTP 401); one line, never a secret."""


class Forbidden(Exception):
    """Authenticated, but the role does not allow it (HTTP 403)."""


class LockedOut(AccessError):
    """Too many wrong passwords: the account is locked until ``until`` (HTTP 423)."""

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


class RateLimited(AccessError):
    """Too many login attempts from one client (HTTP 429); retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AccessInputError(ValueError):
    """A bad user name, password, role or profile; the message is one line."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: user id and name, the effective role and how they authenticated (jwt | api_key)."""

    user_id: int
    username: str
    role: str
    via: str

    def allows(self, role: str) -> bool:
        """True when this principal's role is ``role`` or above (viewer < trader < admin)."""
        return RANK[self.role] >= RANK[role]


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccessInputError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if not isinstance(password, str) or not 10 <= len(password) <= 256:
        raise AccessInputError("password must be 10-256 characters")
    return password


def digest_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


class SlidingWindow:
    """At most ``limit`` events per key within ``window`` seconds (in memory, thread-safe)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._events: dict[str, deque] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> int:
        """Record an event; return 0 when allowed, else the seconds to wait (the event is not recorded)."""
        now = time.monotonic()
        with self._lock:
            q = self._events.setdefault(key, deque())
            while q and now - q[0] >= self.window:
                q.popleft()
            if len(q) >= self.limit:
                return max(1, int(self.window - (now - q[0])) + 1)
            q.append(now)
            if len(self._events) > 100_000:  # bound memory: forget idle clients
                self._events = {k: v for k, v in self._events.items() if v and now - v[-1] < self.window}
            return 0


class Access:
    """Accounts, tokens and API keys over the platform database.

    Args:
        engine: platform database engine (:func:`perpbot.platform.db.make_engine`).
        jwt_secret: HS256 key (at least 32 characters; from ``PERPBOT_JWT_SECRET``).
        token_ttl_s: access-token lifetime, seconds (default 900).
        max_failures / lockout_s: consecutive wrong passwords before a lockout, and its length (s).
        rate_limit / rate_window: login attempts allowed per client address per window (s).

    Raises:
        ValueError: a JWT secret shorter than 32 characters.
    """

    def __init__(self, engine: sa.Engine, jwt_secret: str, *, token_ttl_s: int = 900, max_failures: int = 5,
                 lockout_s: int = 900, rate_limit: int = 20, rate_window: float = 60.0,
                 hasher: PasswordHash | None = None) -> None:
        if not isinstance(jwt_secret, str) or len(jwt_secret) < 32:
            raise ValueError("the JWT secret (PERPBOT_JWT_SECRET) must be at least 32 characters")
        self.engine = engine
        self._secret = jwt_secret
        self.token_ttl_s = token_ttl_s
        self.max_failures, self.lockout_s = max_failures, lockout_s
        self.limiter = SlidingWindow(rate_limit, rate_window)
        self.hasher = hasher or PasswordHash.recommended()
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    # ------------------------------------------------------------------ audit
    def audit(self, action: str, *, actor_id: int | None = None, target: str | None = None,
              client: str | None = None, detail: dict[str, Any] | None = None, session: Session | None = None) -> None:
        """Write one audit row (in ``session``'s transaction when given)."""
        row = AuditEvent(actor_id=actor_id, action=action, target=target, client=(client or None) and client[:64],
                         detail=detail)
        if session is not None:
            session.add(row)
            return
        with write_session(self.engine) as s:
            s.add(row)

    def audit_log(self, limit: int = 100) -> list[AuditEvent]:
        with Session(self.engine) as s:
            return list(s.execute(sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)).scalars())

    # ------------------------------------------------------------------ users
    def create_user(self, username: str, password: str, role: str = "trader", *, risk_profile: str = "conservative",
                    actor_id: int | None = None, client: str | None = None) -> User:
        """Create an account. Raises :class:`AccessInputError` (bad name/password/role/profile, name taken)."""
        if not isinstance(username, str) or not _USERNAME.fullmatch(username):
            raise AccessInputError("username must be 3-64 characters: letters, digits, '_', '.', '-'")
        check_password(password)
        check_role(role)
        if risk_profile not in PROFILE_NAMES:
            raise AccessInputError(f"risk profile {risk_profile!r} is not one of {', '.join(PROFILE_NAMES)}")
        pw_hash = self.hasher.hash(password)
        try:
            with write_session(self.engine) as s:
                user = User(username=username, password_hash=pw_hash, role=role, risk_profile=risk_profile,
                            disabled=False, failed_logins=0)
                s.add(user)
                s.flush()
                self.audit("user_created", actor_id=actor_id, target=f"user:{user.id}", client=client,
                           detail={"username": username, "role": role}, session=s)
        except sa.exc.IntegrityError:
            raise AccessInputError(f"username {username!r} is taken") from None
        return user

    def get_user(self, user_id: int) -> User | None:
        with Session(self.engine) as s:
            return s.get(User, user_id)

    def list_users(self) -> list[User]:
        with Session(self.engine) as s:
            return list(s.execute(sa.select(User).order_by(User.id)).scalars())

    def update_user(self, user_id: int, *, actor_id: int | None, client: str | None = None, role: str | None = None,
                    disabled: bool | None = None, risk_profile: str | None = None) -> User:
        """Change a user's role, disabled flag or risk profile (audited). Raises KeyError for an unknown user."""
        if role is not None:
            check_role(role)
        if risk_profile is not None and risk_profile not in PROFILE_NAMES:
            raise AccessInputError(f"risk profile {risk_profile!r} is not one of {', '.join(PROFILE_NAMES)}")
        with write_session(self.engine) as s:
            user = s.get(User, user_id, with_for_update=True)
            if user is None:
                raise KeyError(f"user {user_id} not found")
            changes: dict[str, Any] = {}
            for name, value in (("role", role), ("disabled", disabled), ("risk_profile", risk_profile)):
                if value is not None and getattr(user, name) != value:
                    changes[name] = {"from": getattr(user, name), "to": value}
                    setattr(user, name, value)
            if changes:
                action = "role_changed" if "role" in changes else "user_changed"
                self.audit(action, actor_id=actor_id, target=f"user:{user_id}", client=client, detail=changes,
                           session=s)
            return user

    # ------------------------------------------------------------------ login
    def authenticate(self, username: str, password: str, client: str | None = None) -> User:
        """Check a password login (rate limit, lockout, audit).

        Raises:
            RateLimited: too many attempts from ``client``.
            LockedOut: the account is locked (or this failure locked it).
            AccessError: wrong user name or password, or a disabled account (one message for all).
        """
        valid_name = isinstance(username, str) and bool(_USERNAME.fullmatch(username))
        if not valid_name:
            username = "<not a user name>"  # never stored or looked up as given (NUL bytes, 10 kB ...)
        wait = self.limiter.hit(client or "-")
        if wait:
            self.audit("login_rate_limited", target=f"username:{username}", client=client)
            raise RateLimited(f"too many login attempts: retry in {wait} s", wait)
        now = utcnow()
        error: AccessError
        with write_session(self.engine) as s:
            user = None if not valid_name else s.execute(
                sa.select(User).where(User.username == username).with_for_update()).scalar_one_or_none()
            if user is None:
                self.hasher.verify(password, self._dummy_hash)
                self.audit("login_failed", target=f"username:{username}", client=client, session=s)
                error = AccessError("wrong user name or password")
            elif user.locked_until is not None and user.locked_until > now:
                self.audit("login_locked", actor_id=user.id, target=f"user:{user.id}", client=client, session=s)
                error = LockedOut(f"account locked until {user.locked_until.isoformat()} after repeated wrong "
                                  "passwords", user.locked_until)
            else:
                ok, new_hash = self.hasher.verify_and_update(password, user.password_hash)
                if ok and not user.disabled:
                    user.failed_logins, user.locked_until = 0, None
                    if new_hash:
                        user.password_hash = new_hash
                    self.audit("login_ok", actor_id=user.id, target=f"user:{user.id}", client=client, session=s)
                    return user
                user.failed_logins = (user.failed_logins or 0) + (0 if ok else 1)
                locked = user.failed_logins >= self.max_failures
                if locked:
                    user.locked_until, user.failed_logins = now + timedelta(seconds=self.lockout_s), 0
                self.audit("login_locked" if locked else "login_failed", actor_id=user.id, target=f"user:{user.id}",
                           client=client, detail={"disabled": True} if ok else None, session=s)
                error = (LockedOut(f"account locked until {user.locked_until.isoformat()} after "
                                   f"{self.max_failures} wrong passwords", user.locked_until)
                         if locked else AccessError("wrong user name or password"))
        raise error  # after the commit: the failure count and audit row stay

    def issue_token(self, user: User) -> tuple[str, int]:
        """(JWT, lifetime in seconds) for an authenticated ``user``."""
        now = int(time.time())
        claims = {"sub": str(user.id), "role": user.role, "iat": now, "exp": now + self.token_ttl_s, "iss": ISSUER,
                  "jti": secrets.token_hex(8)}
        return jwt.encode(claims, self._secret, algorithm="HS256"), self.token_ttl_s

    def _principal(self, user_id: int, role_cap: str, via: str) -> Principal:
        user = self.get_user(user_id)
        if user is None or user.disabled:
            raise AccessError("the account of this credential is disabled or gone")
        role = min(user.role, role_cap, key=RANK.__getitem__)
        return Principal(user.id, user.username, role, via)

    def principal_from_token(self, token: str) -> Principal:
        """The caller of a JWT. Raises :class:`AccessError` (expired, bad signature, disabled user)."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], issuer=ISSUER,
                                options={"require": ["exp", "iat", "sub", "iss"]})
            user_id, role = int(claims["sub"]), str(claims.get("role", "viewer"))
        except jwt.ExpiredSignatureError:
            raise AccessError("access token expired: log in again") from None
        except (jwt.InvalidTokenError, ValueError, KeyError):
            raise AccessError("invalid access token") from None
        return self._principal(user_id, role if role in RANK else "viewer", "jwt")

    # ------------------------------------------------------------------ API keys
    def create_api_key(self, user_id: int, name: str, role: str | None = None, client: str | None = None) -> tuple[str, ApiKey]:
        """(the key, shown once; its row). ``role`` defaults to the owner's and may not exceed it."""
        user = self.get_user(user_id)
        if user is None:
            raise KeyError(f"user {user_id} not found")
        role = check_role(role or user.role)
        if RANK[role] > RANK[user.role]:
            raise AccessInputError(f"an API key's role cannot exceed its owner's ({user.role})")
        if not isinstance(name, str) or not _PRINTABLE.fullmatch(name):
            raise AccessInputError("API key name must be 1-64 characters, no control characters")
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        with write_session(self.engine) as s:
            row = ApiKey(user_id=user_id, name=name, prefix=key[:12], key_hash=digest_key(key), role=role)
            s.add(row)
            s.flush()
            self.audit("api_key_created", actor_id=user_id, target=f"api_key:{row.id}", client=client,
                       detail={"name": name, "role": role, "prefix": row.prefix}, session=s)
        return key, row

    def list_api_keys(self, user_id: int) -> list[ApiKey]:
        with Session(self.engine) as s:
            return list(s.execute(sa.select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.id)).scalars())

    def revoke_api_key(self, user_id: int, key_id: int, client: str | None = None) -> bool:
        """Revoke one of ``user_id``'s keys; False when it has no such key (or it was revoked already)."""
        with write_session(self.engine) as s:
            row = s.get(ApiKey, key_id, with_for_update=True)
            if row is None or row.user_id != user_id or row.revoked_at is not None:
                return False
            row.revoked_at = utcnow()
            self.audit("api_key_revoked", actor_id=user_id, target=f"api_key:{key_id}", client=client, session=s)
            return True

    def principal_from_api_key(self, key: str) -> Principal:
        """The caller of an API key. Raises :class:`AccessError` (unknown or revoked key, disabled owner)."""
        if not isinstance(key, str) or not key.startswith(API_KEY_PREFIX) or len(key) > 128:
            raise AccessError("invalid API key")
        with Session(self.engine) as s:
            row = s.execute(sa.select(ApiKey).where(ApiKey.key_hash == digest_key(key))).scalar_one_or_none()
            if row is None or row.revoked_at is not None:
                raise AccessError("invalid or revoked API key")
            user_id, role, key_id = row.user_id, row.role, row.id
        with self.engine.begin() as conn:  # best effort, no lock: last use is informational
            conn.execute(sa.update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))
        return self._principal(user_id, role, "api_key")

    def principal(self, credential: str) -> Principal:
        """Principal of a bearer credential: an API key (``pbk_...``) or a JWT."""
        if credential.startswith(API_KEY_PREFIX):
            return self.principal_from_api_key(credential)
        return self.principal_from_token(credential)

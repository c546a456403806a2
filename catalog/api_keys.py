"""API keys: minting, hashing and the verified lookup used on every API request.

A key reads ``pk_<prefix>_<secret>`` (publishable) or ``sk_<prefix>_<secret>`` (secret).
Only ``prefix`` and the SHA-256 of the whole key are stored; keys carry 192 bits of
randomness, so a fast hash is the right tool (no password stretching needed).

Verified keys are kept in process memory for ``CACHE_SECONDS`` so the hot read path
does not query the database on every request; a revoked key stops working within
that time.
"""

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from catalog.audit import Actor, audit_record
from catalog.models import ApiKey, Shop

CACHE_SECONDS = 5.0
LAST_USED_WRITE_EVERY_S = 60.0
_KIND_PREFIX = {ApiKey.Kind.PUBLISHABLE: "pk", ApiKey.Kind.SECRET: "sk"}


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class MintedKey:
    key: ApiKey
    raw: str  # shown once, never stored


def api_key_create(
    *, shop: Shop, kind: str, name: str = "", allowed_origins: list[str] | None = None, actor: Actor
) -> MintedKey:
    if kind not in _KIND_PREFIX:
        raise ValueError(f"unknown key kind {kind!r}")
    prefix = secrets.token_hex(6)
    raw = f"{_KIND_PREFIX[ApiKey.Kind(kind)]}_{prefix}_{secrets.token_urlsafe(24)}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            shop=shop,
            kind=kind,
            name=name,
            prefix=prefix,
            key_hash=hash_key(raw),
            allowed_origins=list(allowed_origins or []),
        )
        audit_record(
            shop=shop,
            actor=actor,
            action="create",
            object_type="api_key",
            object_id=key.pk,
            object_repr=str(key),
            after={"kind": kind, "name": name, "prefix": prefix, "allowed_origins": key.allowed_origins},
        )
    return MintedKey(key=key, raw=raw)


def api_key_revoke(*, key: ApiKey, actor: Actor) -> None:
    with transaction.atomic():
        ApiKey.objects.filter(pk=key.pk).update(active=False, revoked_at=timezone.now())
        audit_record(
            shop=key.shop,
            actor=actor,
            action="revoke",
            object_type="api_key",
            object_id=key.pk,
            object_repr=str(key),
            before={"active": True},
            after={"active": False},
        )
    _forget(key.prefix)


def api_key_set_origins(*, key: ApiKey, allowed_origins: list[str], actor: Actor) -> None:
    before = list(key.allowed_origins)
    with transaction.atomic():
        ApiKey.objects.filter(pk=key.pk).update(allowed_origins=allowed_origins)
        audit_record(
            shop=key.shop,
            actor=actor,
            action="update",
            object_type="api_key",
            object_id=key.pk,
            object_repr=str(key),
            before={"allowed_origins": before},
            after={"allowed_origins": allowed_origins},
        )
    _forget(key.prefix)


_PREFIX = re.compile(r"[0-9a-f]{1,32}")


def split_key(raw_key: str) -> tuple[str, str] | None:
    """(kind prefix, lookup prefix) of a well-formed key, else None.

    The lookup prefix must be hex (what api_key_create mints), so whatever a client
    sends (NUL, lone surrogates) never reaches a database query."""
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] not in ("pk", "sk") or len(raw_key) > 200 or not _PREFIX.fullmatch(parts[1]):
        return None
    return parts[0], parts[1]


_cache: dict[str, tuple[float, ApiKey]] = {}
_last_used_written: dict[int, float] = {}
_lock = threading.Lock()


def _forget(prefix: str) -> None:
    with _lock:
        _cache.pop(prefix, None)


def api_key_verify(raw_key: str) -> ApiKey | None:
    """The active key (with its shop loaded) matching ``raw_key``, or None.

    The comparison of hashes is constant-time. Results are cached per process for
    CACHE_SECONDS; ``last_used_at`` is written at most once a minute per key.
    """
    parts = split_key(raw_key)
    if parts is None:
        return None
    kind_prefix, prefix = parts
    now = time.monotonic()
    cached = _cache.get(prefix)
    if cached is not None and cached[0] > now:
        key = cached[1]
    else:
        found = ApiKey.objects.select_related("shop").filter(prefix=prefix, active=True).first()
        if found is None:
            _forget(prefix)
            return None
        key = found
        with _lock:
            _cache[prefix] = (now + CACHE_SECONDS, key)
    if _KIND_PREFIX[ApiKey.Kind(key.kind)] != kind_prefix:
        return None
    if not hmac.compare_digest(key.key_hash, hash_key(raw_key)):
        return None
    if now - _last_used_written.get(key.pk, -1e9) > LAST_USED_WRITE_EVERY_S:
        _last_used_written[key.pk] = now
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key


def origin_allowed(key: ApiKey, origin: str | None) -> bool:
    """Whether a request from ``origin`` may use ``key``.

    Secret keys are for servers and ignore origins. A publishable key used from a
    browser (which always sends Origin on cross-origin requests) must come from one of
    the key's allowed origins; without an Origin header it is a server-side call.
    """
    if key.is_secret or not origin:
        return True
    return origin.rstrip("/") in {o.rstrip("/") for o in key.allowed_origins}


_origins_cache: tuple[float, frozenset[str]] = (0.0, frozenset())


def any_key_allows_origin(origin: str) -> bool:
    """For CORS preflights, which carry no key: is ``origin`` allowed by any active key?"""
    global _origins_cache
    now = time.monotonic()
    expires, origins = _origins_cache
    if expires <= now:
        origins = frozenset(
            o.rstrip("/")
            for allowed in ApiKey.objects.filter(active=True, kind=ApiKey.Kind.PUBLISHABLE).values_list(
                "allowed_origins", flat=True
            )
            for o in allowed
        )
        _origins_cache = (now + CACHE_SECONDS, origins)
    return origin.rstrip("/") in origins

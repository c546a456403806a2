"""Where the storefront finds its shop, its publishable key and the recsite API.

``manage.py load_demo`` writes ``<VAR_DIR>/demo-keys.json``::

    {"shop": "demo", "publishable_key": "pk_...", "secret_key": "sk_...",
     "api_origin": "http://127.0.0.1:8000"}

The storefront reads it on every request (it is tiny), so a new key written by
load_demo is picked up without a restart. ``RECSITE_API_ORIGIN`` overrides the API
origin (the Content-Security-Policy of the storefront is built from the same value at
start-up, see recsite.storefront.settings).
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_API_ORIGIN = "http://127.0.0.1:8000"
KEYS_FILE_NAME = "demo-keys.json"


class StorefrontNotConfigured(Exception):
    """The keys file is missing or unusable; ``reason`` says what to do."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StorefrontConfig:
    shop_slug: str
    publishable_key: str
    api_origin: str


def keys_file(var_dir: Path) -> Path:
    return var_dir / KEYS_FILE_NAME


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) URL; ValueError for anything else."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http(s) origin such as http://127.0.0.1:8000")
    return f"{parts.scheme}://{parts.netloc}"


def _read_keys(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise StorefrontNotConfigured(f"{path} does not exist yet.") from None
    except (OSError, ValueError) as error:
        raise StorefrontNotConfigured(f"{path} cannot be read as JSON ({error}).") from None
    if not isinstance(data, dict):
        raise StorefrontNotConfigured(f"{path} must hold a JSON object.")
    return data


def api_origin(var_dir: Path) -> str:
    """The recsite API origin: RECSITE_API_ORIGIN, else the keys file's, else the default."""
    configured = os.environ.get("RECSITE_API_ORIGIN", "").strip()
    if configured:
        return origin_of(configured)
    try:
        from_file = _read_keys(keys_file(var_dir)).get("api_origin")
    except StorefrontNotConfigured:
        from_file = None
    return origin_of(from_file) if isinstance(from_file, str) and from_file else DEFAULT_API_ORIGIN


def load_config(var_dir: Path, api: str) -> StorefrontConfig:
    """The storefront's configuration, or StorefrontNotConfigured saying what is missing."""
    data = _read_keys(keys_file(var_dir))
    shop, key = data.get("shop"), data.get("publishable_key")
    if not isinstance(shop, str) or not shop:
        raise StorefrontNotConfigured(f'{keys_file(var_dir)} has no "shop".')
    if not isinstance(key, str) or not key.startswith("pk_"):
        raise StorefrontNotConfigured(f'{keys_file(var_dir)} has no publishable key ("publishable_key": "pk_...").')
    return StorefrontConfig(shop_slug=shop, publishable_key=key, api_origin=api)

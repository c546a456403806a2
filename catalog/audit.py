"""The audit trail: every change from the console or the API writes one AuditEntry.

Services that change something take an ``Actor`` and call ``audit_record`` inside
their transaction, so the entry exists exactly when the change does.
"""

from dataclasses import dataclass
from typing import Any

from catalog.models import ApiKey, AuditEntry, Shop


@dataclass(frozen=True)
class Actor:
    """Who made a change: a console user, an API key, or the system itself (label only)."""

    label: str
    user_id: int | None = None
    key_id: int | None = None

    @classmethod
    def for_user(cls, user: Any) -> "Actor":
        return cls(label=f"user:{user.get_username()}", user_id=user.pk)

    @classmethod
    def for_key(cls, key: ApiKey) -> "Actor":
        return cls(label=f"key:{key.prefix}", key_id=key.pk)

    @classmethod
    def system(cls, what: str) -> "Actor":
        return cls(label=f"system:{what}")


def audit_record(
    *,
    shop: Shop,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object,
    object_repr: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        shop=shop,
        actor_user_id=actor.user_id,
        actor_key_id=actor.key_id,
        actor_label=actor.label[:200],
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        object_repr=object_repr[:300],
        before=before,
        after=after,
    )

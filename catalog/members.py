"""Console members of a shop: add, change role, remove. Every change is audited.

A shop always keeps at least one admin: the last admin can be neither demoted nor
removed (otherwise nobody could manage keys, members or erasure any more).
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from catalog.audit import Actor, audit_record
from catalog.models import Membership, Shop


class MembershipError(ValueError):
    """A membership change that is not allowed; the message says why, for the user."""


def members_of_shop(shop: Shop) -> list[Membership]:
    return list(Membership.objects.filter(shop=shop).select_related("user").order_by("user__username"))


def membership_add(*, shop: Shop, username: str, role: str, actor: Actor) -> Membership:
    """Give an existing user a role in the shop."""
    user = get_user_model().objects.filter(username__iexact=username.strip()).first()
    if user is None:
        raise MembershipError(f"There is no user named {username.strip()!r}. Ask them to get an account first.")
    role = Membership.Role(role)
    with transaction.atomic():
        if Membership.objects.filter(shop=shop, user=user).exists():
            raise MembershipError(f"{user.get_username()} is already a member of this shop.")
        membership = Membership.objects.create(shop=shop, user=user, role=role)
        audit_record(
            shop=shop,
            actor=actor,
            action="create",
            object_type="membership",
            object_id=membership.pk,
            object_repr=user.get_username(),
            after={"user": user.get_username(), "role": role.value},
        )
    return membership


def membership_set_role(*, membership: Membership, role: str, actor: Actor) -> Membership:
    role = Membership.Role(role)
    with transaction.atomic():
        current = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
        if current.role == role:
            return current
        if current.role == Membership.Role.ADMIN:
            _keep_one_admin(current, "demote")
        before = current.role
        current.role = role
        current.save(update_fields=["role"])
        audit_record(
            shop=current.shop,
            actor=actor,
            action="update",
            object_type="membership",
            object_id=current.pk,
            object_repr=current.user.get_username(),
            before={"role": before},
            after={"role": role.value},
        )
    return current


def membership_remove(*, membership: Membership, actor: Actor) -> None:
    with transaction.atomic():
        current = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
        if current.role == Membership.Role.ADMIN:
            _keep_one_admin(current, "remove")
        username = current.user.get_username()
        audit_record(
            shop=current.shop,
            actor=actor,
            action="delete",
            object_type="membership",
            object_id=current.pk,
            object_repr=username,
            before={"user": username, "role": current.role},
        )
        current.delete()


def _keep_one_admin(membership: Membership, verb: str) -> None:
    # Lock the shop's admin rows so two admins cannot demote each other at once.
    admins: Any = Membership.objects.select_for_update().filter(shop_id=membership.shop_id, role=Membership.Role.ADMIN)
    if len(list(admins)) <= 1:
        raise MembershipError(f"You cannot {verb} the last admin of the shop; make someone else admin first.")

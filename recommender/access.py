"""Console permission checks for model registry objects: one ``access_*`` function per kind.

Each builds on ``catalog.access.access_shop`` (membership, role, second factor) and then
looks the object up within that shop only: another shop's version is a 404, exactly
like one that does not exist.
"""

from typing import Any

from django.http import Http404

from catalog.access import access_shop
from catalog.models import Membership
from recommender.models import ModelVersion
from recommender.selectors import model_version_for_shop


def access_model_version(
    user: Any, shop_slug: str, version_id: int, role_needed: str
) -> tuple[Membership, ModelVersion]:
    membership = access_shop(user, shop_slug, role_needed)
    version = model_version_for_shop(membership.shop, version_id)
    if version is None:
        raise Http404("No such model version.")
    return membership, version

"""Console permission checks for campaigns objects: one ``access_*`` function per kind.

Each builds on ``catalog.access.access_shop`` (membership, role, second factor) and then
looks the object up within that shop only, through the campaigns selectors: an object
of another shop is a 404, exactly like one that does not exist.
"""

from typing import Any

from django.http import Http404

from campaigns import selectors
from campaigns.models import Experiment, Placement, Promotion, SeasonalBoost, SeasonalSuggestion, Strategy
from catalog.access import access_shop
from catalog.models import Membership


def access_placement(user: Any, shop_slug: str, placement_slug: str, role_needed: str) -> tuple[Membership, Placement]:
    membership = access_shop(user, shop_slug, role_needed)
    placement = selectors.placement_by_slug(membership.shop, placement_slug)
    if placement is None:
        raise Http404("No such placement.")
    return membership, placement


def access_strategy(user: Any, shop_slug: str, strategy_id: int, role_needed: str) -> tuple[Membership, Strategy]:
    membership = access_shop(user, shop_slug, role_needed)
    strategy = selectors.strategy_by_id(membership.shop, strategy_id)
    if strategy is None:
        raise Http404("No such strategy.")
    return membership, strategy


def access_promotion(user: Any, shop_slug: str, promotion_id: int, role_needed: str) -> tuple[Membership, Promotion]:
    membership = access_shop(user, shop_slug, role_needed)
    promotion = selectors.promotion_by_id(membership.shop, promotion_id)
    if promotion is None:
        raise Http404("No such promotion.")
    return membership, promotion


def access_seasonal_boost(
    user: Any, shop_slug: str, boost_id: int, role_needed: str
) -> tuple[Membership, SeasonalBoost]:
    membership = access_shop(user, shop_slug, role_needed)
    boost = selectors.seasonal_boost_by_id(membership.shop, boost_id)
    if boost is None:
        raise Http404("No such seasonal boost.")
    return membership, boost


def access_seasonal_suggestion(
    user: Any, shop_slug: str, suggestion_id: int, role_needed: str
) -> tuple[Membership, SeasonalSuggestion]:
    membership = access_shop(user, shop_slug, role_needed)
    suggestion = selectors.seasonal_suggestion_by_id(membership.shop, suggestion_id)
    if suggestion is None:
        raise Http404("No such suggestion.")
    return membership, suggestion


def access_experiment(user: Any, shop_slug: str, experiment_id: int, role_needed: str) -> tuple[Membership, Experiment]:
    membership = access_shop(user, shop_slug, role_needed)
    experiment = selectors.experiment_by_id(membership.shop, experiment_id)
    if experiment is None:
        raise Http404("No such experiment.")
    return membership, experiment

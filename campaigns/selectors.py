"""Reads of campaigns objects. Every read takes the shop, so another shop's object is
simply not found (the API answers 404 without saying whether it exists)."""

from django.db.models import QuerySet

from campaigns.models import (
    Experiment,
    ExperimentVersion,
    Placement,
    Promotion,
    SeasonalBoost,
    SeasonalSuggestion,
    Strategy,
)
from catalog.models import Shop


def strategies_for_shop(shop: Shop) -> QuerySet[Strategy]:
    return Strategy.objects.filter(shop=shop).order_by("name", "id")


def strategy_by_id(shop: Shop, strategy_id: int) -> Strategy | None:
    return Strategy.objects.filter(shop=shop, pk=strategy_id).first()


def placements_for_shop(shop: Shop) -> QuerySet[Placement]:
    return Placement.objects.filter(shop=shop).order_by("slug")


def placement_by_slug(shop: Shop, slug: str) -> Placement | None:
    return Placement.objects.filter(shop=shop, slug=slug).first()


def placements_by_slugs(shop: Shop, slugs: list[str]) -> tuple[list[Placement], list[str]]:
    """The placements with these slugs, and the slugs that are unknown (in input order)."""
    found = {p.slug: p for p in Placement.objects.filter(shop=shop, slug__in=slugs)}
    return [found[s] for s in slugs if s in found], [s for s in slugs if s not in found]


def promotions_for_shop(shop: Shop, status: str | None = None) -> QuerySet[Promotion]:
    promotions = (
        Promotion.objects.filter(shop=shop)
        .select_related("shop")
        .prefetch_related("placements")
        .order_by("-priority", "created_at", "id")
    )
    return promotions.filter(status=status) if status else promotions


def promotion_by_id(shop: Shop, promotion_id: int) -> Promotion | None:
    return promotions_for_shop(shop).filter(pk=promotion_id).first()


def seasonal_boosts_for_shop(shop: Shop) -> QuerySet[SeasonalBoost]:
    return SeasonalBoost.objects.filter(shop=shop).order_by("created_at", "id")


def seasonal_boost_by_id(shop: Shop, boost_id: int) -> SeasonalBoost | None:
    return SeasonalBoost.objects.filter(shop=shop, pk=boost_id).first()


def seasonal_suggestions_for_shop(shop: Shop, status: str | None = None) -> QuerySet[SeasonalSuggestion]:
    suggestions = (
        SeasonalSuggestion.objects.filter(shop=shop).select_related("category").order_by("first_day", "-lift", "id")
    )
    return suggestions.filter(status=status) if status else suggestions


def seasonal_suggestion_by_id(shop: Shop, suggestion_id: int) -> SeasonalSuggestion | None:
    return seasonal_suggestions_for_shop(shop).filter(pk=suggestion_id).first()


def experiments_for_shop(shop: Shop) -> QuerySet[Experiment]:
    return (
        Experiment.objects.filter(shop=shop)
        .select_related("placement")
        .prefetch_related("variants__strategy")
        .order_by("-created_at", "-id")
    )


def experiment_by_id(shop: Shop, experiment_id: int) -> Experiment | None:
    return experiments_for_shop(shop).filter(pk=experiment_id).first()


def experiment_versions(experiment: Experiment) -> QuerySet[ExperimentVersion]:
    return ExperimentVersion.objects.filter(experiment=experiment).order_by("number")

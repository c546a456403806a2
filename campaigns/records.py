"""JSON-safe pictures of campaigns objects: the ``before`` and ``after`` of audit entries.

Datetimes are ISO 8601 in UTC, dates and times ISO; related objects by id (and slug
for placements), so an entry still reads correctly after they are gone.
"""

from datetime import date, datetime, time
from typing import Any

from campaigns.models import Experiment, Placement, Promotion, SeasonalBoost, SeasonalSuggestion, Strategy


def _iso(value: datetime | date | time | None) -> str | None:
    return None if value is None else value.isoformat()


def strategy_record(strategy: Strategy) -> dict[str, Any]:
    return {"id": strategy.pk, "name": strategy.name, "config": strategy.config}


def placement_record(placement: Placement) -> dict[str, Any]:
    return {
        "id": placement.pk,
        "slug": placement.slug,
        "name": placement.name,
        "kind": placement.kind,
        "default_strategy": placement.default_strategy_id,
        "promotions_enabled": placement.promotions_enabled,
        "model_version_id": placement.model_version_id,
    }


def promotion_record(promotion: Promotion) -> dict[str, Any]:
    return {
        "id": promotion.pk,
        "name": promotion.name,
        "status": promotion.status,
        "target": promotion.target,
        "action": promotion.action,
        "slot": promotion.slot,
        "factor": promotion.factor,
        "all_placements": promotion.all_placements,
        "placements": sorted(p.slug for p in promotion.placements.all()) if promotion.pk else [],
        "starts_at": _iso(promotion.starts_at),
        "ends_at": _iso(promotion.ends_at),
        "yearly_from": promotion.yearly_from,
        "yearly_until": promotion.yearly_until,
        "weekdays": list(promotion.weekdays or []),
        "daily_from": _iso(promotion.daily_from),
        "daily_until": _iso(promotion.daily_until),
        "priority": promotion.priority,
    }


def seasonal_boost_record(boost: SeasonalBoost) -> dict[str, Any]:
    return {
        "id": boost.pk,
        "name": boost.name,
        "categories": list(boost.categories),
        "tags": list(boost.tags),
        "factor": boost.factor,
        "recurrence": boost.recurrence,
        "first_day": _iso(boost.first_day),
        "last_day": _iso(boost.last_day),
        "yearly_from": boost.yearly_from,
        "yearly_until": boost.yearly_until,
        "ramp_up_days": boost.ramp_up_days,
        "ramp_down_days": boost.ramp_down_days,
        "active": boost.active,
    }


def seasonal_suggestion_record(suggestion: SeasonalSuggestion) -> dict[str, Any]:
    return {
        "id": suggestion.pk,
        "category": suggestion.category_id,
        "first_day": _iso(suggestion.first_day),
        "last_day": _iso(suggestion.last_day),
        "lift": suggestion.lift,
        "suggested_factor": suggestion.suggested_factor,
        "status": suggestion.status,
        "boost": suggestion.boost_id,
    }


def experiment_record(experiment: Experiment) -> dict[str, Any]:
    return {
        "id": experiment.pk,
        "name": experiment.name,
        "placement": experiment.placement_id,
        "status": experiment.status,
        "version": experiment.version,
        "holdout_percent": experiment.holdout_percent,
        "primary_metric": experiment.primary_metric,
        "starts_at": _iso(experiment.starts_at),
        "stops_at": _iso(experiment.stops_at),
        "started_at": _iso(experiment.started_at),
        "stopped_at": _iso(experiment.stopped_at),
        "winner": experiment.winner,
        "variants": [
            {
                "name": v.name,
                "is_control": v.is_control,
                "allocation": v.allocation,
                "strategy": v.strategy_id,
                "promotions_on": v.promotions_on,
                "model_version_id": v.model_version_id,
            }
            for v in experiment.variants.all()
        ]
        if experiment.pk
        else [],
    }

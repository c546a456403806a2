"""Writes to campaigns: placements, strategies, promotions, seasonal boosts, experiments.

Every service runs in one transaction that (1) validates (Django ValidationError with
field details), (2) writes, (3) records exactly one AuditEntry per object it changes,
with the object's record before and after (campaigns.records), and (4) bumps the shop's
CampaignsVersion so serving processes reload their campaign state. An update that
changes nothing writes nothing. A change the current state forbids (an object in use,
a wrong status, a second experiment on a placement) raises CampaignsConflict.

``fields`` arguments take model field names (values already typed: datetimes aware,
related objects as model instances of the same shop); unknown names are a programming
error (ValueError).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone

from campaigns.models import (
    HOLDOUT,
    CampaignsVersion,
    Experiment,
    ExperimentVariant,
    ExperimentVersion,
    Placement,
    PlacementKind,
    Promotion,
    SeasonalBoost,
    SeasonalSuggestion,
    Strategy,
)
from campaigns.records import (
    experiment_record,
    placement_record,
    promotion_record,
    seasonal_boost_record,
    seasonal_suggestion_record,
    strategy_record,
)
from campaigns.seasonal import seasonal_lifts_measure
from campaigns.strategy import DEFAULT_STRATEGIES
from catalog.audit import Actor, audit_record
from catalog.models import Shop

M = TypeVar("M", bound=models.Model)

MAX_VARIANTS = 10


class CampaignsConflict(Exception):
    """The change is valid in itself but not in the object's current state (API: 409)."""

    def __init__(self, message: str, code: str = "conflict") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --- shared plumbing ---------------------------------------------------------------


def campaigns_version_bump(*, shop_id: int) -> None:
    """Move the shop's campaigns version (call inside the changing transaction)."""
    if CampaignsVersion.objects.filter(shop_id=shop_id).update(version=F("version") + 1):
        return
    _, created = CampaignsVersion.objects.get_or_create(shop_id=shop_id, defaults={"version": 1})
    if not created:  # another transaction created it meanwhile
        CampaignsVersion.objects.filter(shop_id=shop_id).update(version=F("version") + 1)


def _audit(
    *,
    shop: Shop,
    actor: Actor,
    action: str,
    object_type: str,
    obj: models.Model,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    audit_record(
        shop=shop,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=obj.pk if obj.pk is not None else (before or {}).get("id"),
        object_repr=str(obj),
        before=before,
        after=after,
    )
    campaigns_version_bump(shop_id=shop.pk)


def _assign(obj: models.Model, fields: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"{type(obj).__name__} has no settable field {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(obj, name, value)


def _locked(obj: M) -> M:
    """The row again, locked for this transaction (fresh values, no stale prefetch)."""
    return type(obj)._default_manager.select_for_update().get(pk=obj.pk)


def _clean(obj: models.Model) -> None:
    """Field and model validation; uniqueness is checked by the services with field names."""
    obj.full_clean(exclude=["shop"], validate_unique=False, validate_constraints=False)


def _name_taken(queryset: models.QuerySet[Any], obj: models.Model, **lookup: Any) -> bool:
    return queryset.filter(**lookup).exclude(pk=obj.pk).exists()


# --- strategies -----------------------------------------------------------------------

STRATEGY_FIELDS = frozenset({"name", "config"})


def _strategy_save(strategy: Strategy) -> None:
    _clean(strategy)
    if _name_taken(Strategy.objects.all(), strategy, shop_id=strategy.shop_id, name=strategy.name):
        raise ValidationError({"name": ["a strategy with this name already exists"]})
    strategy.save()


@transaction.atomic
def strategy_create(*, shop: Shop, actor: Actor, fields: Mapping[str, Any]) -> Strategy:
    strategy = Strategy(shop=shop)
    _assign(strategy, fields, STRATEGY_FIELDS)
    _strategy_save(strategy)
    _audit(
        shop=shop,
        actor=actor,
        action="create",
        object_type="strategy",
        obj=strategy,
        before=None,
        after=strategy_record(strategy),
    )
    return strategy


@transaction.atomic
def strategy_update(*, strategy: Strategy, actor: Actor, fields: Mapping[str, Any]) -> Strategy:
    strategy = _locked(strategy)
    before = strategy_record(strategy)
    _assign(strategy, fields, STRATEGY_FIELDS)
    _strategy_save(strategy)
    after = strategy_record(strategy)
    if after != before:
        _audit(
            shop=strategy.shop,
            actor=actor,
            action="update",
            object_type="strategy",
            obj=strategy,
            before=before,
            after=after,
        )
    return strategy


@transaction.atomic
def strategy_delete(*, strategy: Strategy, actor: Actor) -> None:
    strategy = _locked(strategy)
    users = sorted(strategy.placements.values_list("slug", flat=True))
    if users:
        raise CampaignsConflict(f"the strategy is the default of placement(s) {', '.join(users)}", "in_use")
    if strategy.experiment_variants.exists():
        raise CampaignsConflict("the strategy is used by an experiment variant", "in_use")
    before = strategy_record(strategy)
    strategy.delete()
    _audit(
        shop=strategy.shop,
        actor=actor,
        action="delete",
        object_type="strategy",
        obj=strategy,
        before=before,
        after=None,
    )


# --- placements -------------------------------------------------------------------------

PLACEMENT_FIELDS = frozenset({"slug", "name", "kind", "default_strategy", "promotions_enabled", "model_version_id"})


def _placement_save(placement: Placement) -> None:
    _clean(placement)
    if _name_taken(Placement.objects.all(), placement, shop_id=placement.shop_id, slug=placement.slug):
        raise ValidationError({"slug": ["a placement with this slug already exists"]})
    placement.save()


@transaction.atomic
def placement_create(*, shop: Shop, actor: Actor, fields: Mapping[str, Any]) -> Placement:
    placement = Placement(shop=shop)
    _assign(placement, fields, PLACEMENT_FIELDS)
    _placement_save(placement)
    _audit(
        shop=shop,
        actor=actor,
        action="create",
        object_type="placement",
        obj=placement,
        before=None,
        after=placement_record(placement),
    )
    return placement


@transaction.atomic
def placement_update(*, placement: Placement, actor: Actor, fields: Mapping[str, Any]) -> Placement:
    placement = _locked(placement)
    before = placement_record(placement)
    _assign(placement, fields, PLACEMENT_FIELDS)
    _placement_save(placement)
    after = placement_record(placement)
    if after != before:
        _audit(
            shop=placement.shop,
            actor=actor,
            action="update",
            object_type="placement",
            obj=placement,
            before=before,
            after=after,
        )
    return placement


@transaction.atomic
def placement_delete(*, placement: Placement, actor: Actor) -> None:
    """Refused while promotions are scoped to it or it has experiments (their history)."""
    placement = _locked(placement)
    if placement.promotions.exists():
        raise CampaignsConflict("promotions are scoped to this placement; change their scope first", "in_use")
    if placement.experiments.exists():
        raise CampaignsConflict("the placement has experiments; their history keeps it", "in_use")
    before = placement_record(placement)
    placement.delete()
    _audit(
        shop=placement.shop,
        actor=actor,
        action="delete",
        object_type="placement",
        obj=placement,
        before=before,
        after=None,
    )


DEFAULT_PLACEMENTS = (
    (PlacementKind.HOME, "Home page"),
    (PlacementKind.PRODUCT, "Product page"),
    (PlacementKind.CART, "Cart"),
    (PlacementKind.CATEGORY, "Category page"),
)


@transaction.atomic
def placements_create_defaults(*, shop: Shop, actor: Actor) -> list[Placement]:
    """The placements home, product, cart and category, each with its own copy of the
    kind's default strategy. Skips a slug that exists (safe to call twice). One audit
    entry per strategy and per placement created."""
    created = []
    for kind, name in DEFAULT_PLACEMENTS:
        if Placement.objects.filter(shop=shop, slug=kind.value).exists():
            continue
        strategy_name = f"{name} default"
        strategy = Strategy.objects.filter(shop=shop, name=strategy_name).first() or strategy_create(
            shop=shop, actor=actor, fields={"name": strategy_name, "config": DEFAULT_STRATEGIES[kind.value]}
        )
        created.append(
            placement_create(
                shop=shop,
                actor=actor,
                fields={"slug": kind.value, "name": name, "kind": kind.value, "default_strategy": strategy},
            )
        )
    return created


# --- promotions ---------------------------------------------------------------------------

PROMOTION_FIELDS = frozenset(
    {
        "name",
        "target",
        "action",
        "slot",
        "factor",
        "all_placements",
        "starts_at",
        "ends_at",
        "yearly_from",
        "yearly_until",
        "weekdays",
        "daily_from",
        "daily_until",
        "priority",
    }
)


def _promotion_save(promotion: Promotion, placements: Sequence[Placement] | None) -> None:
    """Validate and save, then set the scope (``placements`` None: leave it as it is)."""
    _clean(promotion)
    scope = list(placements) if placements is not None else list(promotion.placements.all()) if promotion.pk else []
    if any(p.shop_id != promotion.shop_id for p in scope):
        raise ValidationError({"placements": ["must be placements of the same shop"]})
    if promotion.all_placements and scope:
        raise ValidationError({"placements": ["leave empty when all_placements is true"]})
    if not promotion.all_placements and not scope:
        raise ValidationError({"placements": ["choose at least one placement, or set all_placements"]})
    promotion.save()
    if placements is not None:
        promotion.placements.set(scope)


@transaction.atomic
def promotion_create(
    *, shop: Shop, actor: Actor, fields: Mapping[str, Any], placements: Sequence[Placement] | None = None
) -> Promotion:
    """A new promotion, as a draft (publish it to make it live on its schedule)."""
    promotion = Promotion(shop=shop, status=Promotion.Status.DRAFT)
    _assign(promotion, fields, PROMOTION_FIELDS)
    _promotion_save(promotion, placements or [])
    _audit(
        shop=shop,
        actor=actor,
        action="create",
        object_type="promotion",
        obj=promotion,
        before=None,
        after=promotion_record(promotion),
    )
    return promotion


@transaction.atomic
def promotion_update(
    *, promotion: Promotion, actor: Actor, fields: Mapping[str, Any], placements: Sequence[Placement] | None = None
) -> Promotion:
    """Change a promotion in any status; a published one changes what is served at once."""
    promotion = _locked(promotion)
    before = promotion_record(promotion)
    _assign(promotion, fields, PROMOTION_FIELDS)
    if fields.get("all_placements") is True and placements is None:
        placements = []
    _promotion_save(promotion, placements)
    after = promotion_record(promotion)
    if after != before:
        _audit(
            shop=promotion.shop,
            actor=actor,
            action="update",
            object_type="promotion",
            obj=promotion,
            before=before,
            after=after,
        )
    return promotion


@transaction.atomic
def promotion_delete(*, promotion: Promotion, actor: Actor) -> None:
    promotion = _locked(promotion)
    before = promotion_record(promotion)
    promotion.delete()
    _audit(
        shop=promotion.shop,
        actor=actor,
        action="delete",
        object_type="promotion",
        obj=promotion,
        before=before,
        after=None,
    )


def _promotion_status(promotion: Promotion, actor: Actor, action: str, allowed: set[str], to: str) -> Promotion:
    promotion = _locked(promotion)
    if promotion.status not in allowed:
        raise CampaignsConflict(f"a {promotion.status} promotion cannot be {to}", "invalid_status")
    before = promotion_record(promotion)
    promotion.status = to
    promotion.save(update_fields=["status", "updated_at"])
    _audit(
        shop=promotion.shop,
        actor=actor,
        action=action,
        object_type="promotion",
        obj=promotion,
        before=before,
        after=promotion_record(promotion),
    )
    return promotion


@transaction.atomic
def promotion_publish(*, promotion: Promotion, actor: Actor, now: datetime | None = None) -> Promotion:
    """Draft or paused -> published: live whenever its schedule is active."""
    if promotion.ends_at is not None and promotion.ends_at <= (now or timezone.now()):
        raise CampaignsConflict("the promotion's end is in the past; change ends_at first", "ended")
    return _promotion_status(
        promotion, actor, "publish", {Promotion.Status.DRAFT, Promotion.Status.PAUSED}, Promotion.Status.PUBLISHED
    )


@transaction.atomic
def promotion_pause(*, promotion: Promotion, actor: Actor) -> Promotion:
    """Published -> paused: not live until published again."""
    return _promotion_status(promotion, actor, "pause", {Promotion.Status.PUBLISHED}, Promotion.Status.PAUSED)


# --- seasonal boosts ------------------------------------------------------------------------

SEASONAL_BOOST_FIELDS = frozenset(
    {
        "name",
        "categories",
        "tags",
        "factor",
        "recurrence",
        "first_day",
        "last_day",
        "yearly_from",
        "yearly_until",
        "ramp_up_days",
        "ramp_down_days",
        "active",
    }
)


@transaction.atomic
def seasonal_boost_create(*, shop: Shop, actor: Actor, fields: Mapping[str, Any]) -> SeasonalBoost:
    boost = SeasonalBoost(shop=shop)
    _assign(boost, fields, SEASONAL_BOOST_FIELDS)
    _clean(boost)
    boost.save()
    _audit(
        shop=shop,
        actor=actor,
        action="create",
        object_type="seasonal_boost",
        obj=boost,
        before=None,
        after=seasonal_boost_record(boost),
    )
    return boost


@transaction.atomic
def seasonal_boost_update(*, boost: SeasonalBoost, actor: Actor, fields: Mapping[str, Any]) -> SeasonalBoost:
    boost = _locked(boost)
    before = seasonal_boost_record(boost)
    _assign(boost, fields, SEASONAL_BOOST_FIELDS)
    _clean(boost)
    boost.save()
    after = seasonal_boost_record(boost)
    if after != before:
        _audit(
            shop=boost.shop,
            actor=actor,
            action="update",
            object_type="seasonal_boost",
            obj=boost,
            before=before,
            after=after,
        )
    return boost


@transaction.atomic
def seasonal_boost_delete(*, boost: SeasonalBoost, actor: Actor) -> None:
    boost = _locked(boost)
    before = seasonal_boost_record(boost)
    boost.delete()
    _audit(
        shop=boost.shop,
        actor=actor,
        action="delete",
        object_type="seasonal_boost",
        obj=boost,
        before=before,
        after=None,
    )


@transaction.atomic
def seasonal_suggestion_accept(
    *, suggestion: SeasonalSuggestion, actor: Actor, factor: float | None = None
) -> SeasonalBoost:
    """Turn a suggestion into a one-off SeasonalBoost of its category and window (with
    the suggested factor unless ``factor`` is given). Audited twice: the boost's create
    and the suggestion's accept."""
    suggestion = _locked(suggestion)
    if suggestion.status != SeasonalSuggestion.Status.SUGGESTED:
        raise CampaignsConflict(f"the suggestion is already {suggestion.status}", "invalid_status")
    before = seasonal_suggestion_record(suggestion)
    boost = seasonal_boost_create(
        shop=suggestion.shop,
        actor=actor,
        fields={
            "name": f"{suggestion.category.name} {suggestion.first_day.day} {suggestion.first_day:%b}",
            "categories": [suggestion.category.path],
            "factor": factor if factor is not None else suggestion.suggested_factor,
            "recurrence": SeasonalBoost.Recurrence.ONCE,
            "first_day": suggestion.first_day,
            "last_day": suggestion.last_day,
        },
    )
    suggestion.status = SeasonalSuggestion.Status.ACCEPTED
    suggestion.boost = boost
    suggestion.decided_at = timezone.now()
    suggestion.save(update_fields=["status", "boost", "decided_at"])
    _audit(
        shop=suggestion.shop,
        actor=actor,
        action="accept",
        object_type="seasonal_suggestion",
        obj=suggestion,
        before=before,
        after=seasonal_suggestion_record(suggestion),
    )
    return boost


@transaction.atomic
def seasonal_suggestion_dismiss(*, suggestion: SeasonalSuggestion, actor: Actor) -> SeasonalSuggestion:
    suggestion = _locked(suggestion)
    if suggestion.status != SeasonalSuggestion.Status.SUGGESTED:
        raise CampaignsConflict(f"the suggestion is already {suggestion.status}", "invalid_status")
    before = seasonal_suggestion_record(suggestion)
    suggestion.status = SeasonalSuggestion.Status.DISMISSED
    suggestion.decided_at = timezone.now()
    suggestion.save(update_fields=["status", "decided_at"])
    _audit(
        shop=suggestion.shop,
        actor=actor,
        action="dismiss",
        object_type="seasonal_suggestion",
        obj=suggestion,
        before=before,
        after=seasonal_suggestion_record(suggestion),
    )
    return suggestion


@transaction.atomic
def seasonal_suggestions_update(*, shop: Shop, today: date) -> int:
    """Store the seasonal lifts measured for the weeks after ``today`` as suggestions.

    Idempotent: one row per (category, window); a row still ``suggested`` gets the new
    measurement, an accepted or dismissed one is left alone (a merchandiser decided).
    Written by a task, not a person: not audited (accepting or dismissing is). Returns
    how many suggestions were created.
    """
    created = 0
    for lift in seasonal_lifts_measure(shop, today):
        values = {
            "last_day": lift.last_day,
            "lift": lift.lift,
            "window_volume": lift.window_volume,
            "suggested_factor": lift.suggested_factor,
        }
        existing = SeasonalSuggestion.objects.filter(
            shop=shop, category_id=lift.category_id, first_day=lift.first_day
        ).first()
        if existing is None:
            SeasonalSuggestion.objects.create(
                shop=shop, category_id=lift.category_id, first_day=lift.first_day, **values
            )
            created += 1
        elif existing.status == SeasonalSuggestion.Status.SUGGESTED:
            SeasonalSuggestion.objects.filter(pk=existing.pk).update(**values)
    return created


# --- experiments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantSpec:
    """One arm as a service takes it. ``strategy`` None: the placement's default."""

    name: str
    allocation: int
    is_control: bool = False
    strategy: Strategy | None = None
    promotions_on: bool = True
    model_version_id: int | None = None

    def key(self) -> tuple[Any, ...]:
        strategy_id = self.strategy.pk if self.strategy is not None else None
        return (self.name, self.allocation, self.is_control, strategy_id, self.promotions_on, self.model_version_id)


EXPERIMENT_FIELDS = frozenset({"name", "placement", "holdout_percent", "primary_metric"})
_FINISHED = {Experiment.Status.STOPPED, Experiment.Status.PROMOTED}


def _variant_problems(shop: Shop, variants: Sequence[VariantSpec]) -> list[str]:
    problems = []
    if not 2 <= len(variants) <= MAX_VARIANTS:
        problems.append(f"an experiment needs 2 to {MAX_VARIANTS} variants")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        problems.append("variant names must be distinct")
    for variant in variants:
        if not variant.name or len(variant.name) > 64 or not variant.name.replace("-", "").replace("_", "").isalnum():
            problems.append(f"variant name {variant.name!r} must be 1-64 letters, digits, - or _")
        if variant.name == HOLDOUT:
            problems.append(f"{HOLDOUT!r} is reserved for held-out units")
        if not 1 <= variant.allocation <= 100:
            problems.append(f"allocation of {variant.name!r} must be from 1 to 100 percent")
        if variant.strategy is not None and variant.strategy.shop_id != shop.pk:
            problems.append(f"strategy of {variant.name!r} must belong to the same shop")
    if sum(1 for v in variants if v.is_control) != 1:
        problems.append("exactly one variant must be the control")
    if sum(v.allocation for v in variants) != 100:
        problems.append(f"allocations must add up to 100, not {sum(v.allocation for v in variants)}")
    return problems


def _current_variants(experiment: Experiment) -> list[VariantSpec]:
    return [
        VariantSpec(
            name=v.name,
            allocation=v.allocation,
            is_control=v.is_control,
            strategy=v.strategy,
            promotions_on=v.promotions_on,
            model_version_id=v.model_version_id,
        )
        for v in ExperimentVariant.objects.filter(experiment=experiment).select_related("strategy")
    ]


def _write_variants(experiment: Experiment, variants: Sequence[VariantSpec]) -> None:
    ExperimentVariant.objects.filter(experiment=experiment).delete()
    ExperimentVariant.objects.bulk_create(
        ExperimentVariant(
            experiment=experiment,
            name=v.name,
            position=position,
            is_control=v.is_control,
            allocation=v.allocation,
            strategy=v.strategy,
            promotions_on=v.promotions_on,
            model_version_id=v.model_version_id,
        )
        for position, v in enumerate(variants)
    )


def _allocation(experiment: Experiment, variants: Sequence[VariantSpec]) -> dict[str, Any]:
    return {
        "holdout_percent": experiment.holdout_percent,
        "variants": [
            {
                "name": v.name,
                "allocation": v.allocation,
                "is_control": v.is_control,
                "strategy": v.strategy.pk if v.strategy is not None else None,
                "promotions_on": v.promotions_on,
                "model_version_id": v.model_version_id,
            }
            for v in variants
        ],
    }


def _experiment_save(experiment: Experiment, variants: Sequence[VariantSpec]) -> None:
    problems: dict[str, list[str]] = {}
    try:
        _clean(experiment)
    except ValidationError as error:
        problems.update(error.message_dict)
    variant_problems = _variant_problems(experiment.shop, variants)
    if variant_problems:
        problems["variants"] = variant_problems
    if problems:
        raise ValidationError(problems)
    experiment.save()


def _fresh(experiment: Experiment) -> Experiment:
    return Experiment.objects.get(pk=experiment.pk)


@transaction.atomic
def experiment_create(
    *, shop: Shop, actor: Actor, fields: Mapping[str, Any], variants: Sequence[VariantSpec]
) -> Experiment:
    """A draft experiment with its variants (schedule or start it to run it)."""
    experiment = Experiment(shop=shop, status=Experiment.Status.DRAFT)
    _assign(experiment, fields, EXPERIMENT_FIELDS)
    _experiment_save(experiment, variants)
    _write_variants(experiment, variants)
    experiment = _fresh(experiment)
    _audit(
        shop=shop,
        actor=actor,
        action="create",
        object_type="experiment",
        obj=experiment,
        before=None,
        after=experiment_record(experiment),
    )
    return experiment


@transaction.atomic
def experiment_update(
    *,
    experiment: Experiment,
    actor: Actor,
    fields: Mapping[str, Any],
    variants: Sequence[VariantSpec] | None = None,
    now: datetime | None = None,
) -> Experiment:
    """Change a draft, scheduled or running experiment (``variants`` None: keep them).

    On a running experiment, a change of the holdout or of the variants (allocation or
    what they serve) ends the current ExperimentVersion and starts the next one: the
    version feeds the assignment hash, so units are re-randomised and the data of the
    two versions is never pooled. The placement can change only in a draft.
    """
    experiment = _locked(experiment)
    if experiment.status in _FINISHED:
        raise CampaignsConflict(f"a {experiment.status} experiment cannot change", "invalid_status")
    moves = "placement" in fields and fields["placement"].pk != experiment.placement_id
    if moves and experiment.status != Experiment.Status.DRAFT:
        raise CampaignsConflict("the placement of a scheduled or running experiment cannot change", "invalid_status")
    before = experiment_record(experiment)
    current = _current_variants(experiment)
    wanted = list(variants) if variants is not None else current
    old_holdout = experiment.holdout_percent
    _assign(experiment, fields, EXPERIMENT_FIELDS)
    _experiment_save(experiment, wanted)
    allocation_changed = [v.key() for v in wanted] != [v.key() for v in current] or (
        experiment.holdout_percent != old_holdout
    )
    if variants is not None and [v.key() for v in wanted] != [v.key() for v in current]:
        _write_variants(experiment, wanted)
    if allocation_changed and experiment.status == Experiment.Status.RUNNING:
        moment = now or timezone.now()
        ExperimentVersion.objects.filter(experiment=experiment, number=experiment.version).update(ended_at=moment)
        experiment.version += 1
        experiment.save(update_fields=["version", "updated_at"])
        ExperimentVersion.objects.create(
            experiment=experiment,
            number=experiment.version,
            allocation=_allocation(experiment, wanted),
            started_at=moment,
        )
    elif allocation_changed and experiment.status == Experiment.Status.SCHEDULED:
        ExperimentVersion.objects.filter(experiment=experiment, number=experiment.version).update(
            allocation=_allocation(experiment, wanted)
        )
    experiment = _fresh(experiment)
    after = experiment_record(experiment)
    if after != before:
        _audit(
            shop=experiment.shop,
            actor=actor,
            action="update",
            object_type="experiment",
            obj=experiment,
            before=before,
            after=after,
        )
    return experiment


@transaction.atomic
def experiment_delete(*, experiment: Experiment, actor: Actor) -> None:
    """Only a draft: an experiment that was scheduled or ran keeps its record."""
    experiment = _locked(experiment)
    if experiment.status != Experiment.Status.DRAFT:
        raise CampaignsConflict(
            f"a {experiment.status} experiment cannot be deleted; only drafts can", "invalid_status"
        )
    before = experiment_record(experiment)
    experiment.delete()
    _audit(
        shop=experiment.shop,
        actor=actor,
        action="delete",
        object_type="experiment",
        obj=experiment,
        before=before,
        after=None,
    )


def _ensure_placement_free(experiment: Experiment, starts_at: datetime, stops_at: datetime | None) -> None:
    """No other experiment runs on the placement, or is scheduled to overlap the window."""
    others = Experiment.objects.filter(placement_id=experiment.placement_id).exclude(pk=experiment.pk)
    running = others.filter(status=Experiment.Status.RUNNING).first()
    if running is not None:
        raise CampaignsConflict(f'experiment "{running.name}" is already running on this placement', "placement_busy")
    for other in others.filter(status=Experiment.Status.SCHEDULED):
        assert other.starts_at is not None
        if (stops_at is None or other.starts_at < stops_at) and (other.stops_at is None or starts_at < other.stops_at):
            raise CampaignsConflict(f'experiment "{other.name}" is scheduled on this placement then', "placement_busy")


@transaction.atomic
def experiment_schedule(
    *,
    experiment: Experiment,
    actor: Actor,
    starts_at: datetime,
    stops_at: datetime | None = None,
    now: datetime | None = None,
) -> Experiment:
    """Draft -> scheduled: serving runs it from ``starts_at`` (until ``stops_at``)."""
    experiment = _locked(experiment)
    if experiment.status != Experiment.Status.DRAFT:
        raise CampaignsConflict(f"a {experiment.status} experiment cannot be scheduled", "invalid_status")
    if starts_at <= (now or timezone.now()):
        raise ValidationError({"starts_at": ["must be in the future; start it now instead"]})
    if stops_at is not None and stops_at <= starts_at:
        raise ValidationError({"stops_at": ["must be after starts_at"]})
    _ensure_placement_free(experiment, starts_at, stops_at)
    before = experiment_record(experiment)
    experiment.status = Experiment.Status.SCHEDULED
    experiment.starts_at, experiment.stops_at = starts_at, stops_at
    experiment.save(update_fields=["status", "starts_at", "stops_at", "updated_at"])
    ExperimentVersion.objects.create(
        experiment=experiment,
        number=experiment.version,
        allocation=_allocation(experiment, _current_variants(experiment)),
        started_at=starts_at,
    )
    experiment = _fresh(experiment)
    _audit(
        shop=experiment.shop,
        actor=actor,
        action="schedule",
        object_type="experiment",
        obj=experiment,
        before=before,
        after=experiment_record(experiment),
    )
    return experiment


@transaction.atomic
def experiment_start(
    *, experiment: Experiment, actor: Actor, stops_at: datetime | None = None, now: datetime | None = None
) -> Experiment:
    """Draft or scheduled -> running, now (a scheduled experiment may start early)."""
    experiment = _locked(experiment)
    moment = now or timezone.now()
    if experiment.status not in (Experiment.Status.DRAFT, Experiment.Status.SCHEDULED):
        raise CampaignsConflict(f"a {experiment.status} experiment cannot be started", "invalid_status")
    stops_at = stops_at or experiment.stops_at
    if stops_at is not None and stops_at <= moment:
        raise ValidationError({"stops_at": ["must be in the future"]})
    _ensure_placement_free(experiment, moment, stops_at)
    before = experiment_record(experiment)
    planned = experiment.starts_at if experiment.status == Experiment.Status.SCHEDULED else None
    started = planned if planned is not None and planned <= moment else moment  # early start: now
    experiment.status = Experiment.Status.RUNNING
    experiment.starts_at = experiment.started_at = started
    experiment.stops_at = stops_at
    try:
        with transaction.atomic():
            experiment.save(update_fields=["status", "starts_at", "started_at", "stops_at", "updated_at"])
    except IntegrityError:  # the partial unique constraint: another start won the race
        raise CampaignsConflict("another experiment is already running on this placement", "placement_busy") from None
    allocation = _allocation(experiment, _current_variants(experiment))
    ExperimentVersion.objects.update_or_create(
        experiment=experiment,
        number=experiment.version,
        defaults={"allocation": allocation, "started_at": started, "ended_at": None},
    )
    experiment = _fresh(experiment)
    _audit(
        shop=experiment.shop,
        actor=actor,
        action="start",
        object_type="experiment",
        obj=experiment,
        before=before,
        after=experiment_record(experiment),
    )
    return experiment


@transaction.atomic
def experiment_stop(*, experiment: Experiment, actor: Actor, now: datetime | None = None) -> Experiment:
    """Running -> stopped. A scheduled experiment that has not started goes back to draft
    (its planned version is dropped); one whose start has passed is stopped like a
    running one."""
    experiment = _locked(experiment)
    moment = now or timezone.now()
    before = experiment_record(experiment)
    if experiment.status == Experiment.Status.SCHEDULED and experiment.starts_at and experiment.starts_at > moment:
        ExperimentVersion.objects.filter(experiment=experiment, number=experiment.version).delete()
        experiment.status = Experiment.Status.DRAFT
        experiment.starts_at = experiment.stops_at = None
        experiment.save(update_fields=["status", "starts_at", "stops_at", "updated_at"])
    elif experiment.status in (Experiment.Status.RUNNING, Experiment.Status.SCHEDULED):
        _finish(experiment, Experiment.Status.STOPPED, moment)
    else:
        raise CampaignsConflict(f"a {experiment.status} experiment cannot be stopped", "invalid_status")
    experiment = _fresh(experiment)
    _audit(
        shop=experiment.shop,
        actor=actor,
        action="stop",
        object_type="experiment",
        obj=experiment,
        before=before,
        after=experiment_record(experiment),
    )
    return experiment


def _finish(experiment: Experiment, status: str, moment: datetime) -> None:
    if experiment.started_at is None:
        experiment.started_at = experiment.starts_at
    end = min(moment, experiment.stops_at) if experiment.stops_at else moment
    if experiment.stopped_at is None:
        experiment.stopped_at = end
        ExperimentVersion.objects.filter(experiment=experiment, number=experiment.version).update(ended_at=end)
    experiment.status = status
    experiment.save(update_fields=["status", "started_at", "stopped_at", "winner", "updated_at"])


@transaction.atomic
def experiment_promote_winner(
    *, experiment: Experiment, actor: Actor, variant_name: str, srm_ok: bool, now: datetime | None = None
) -> Experiment:
    """Make a variant the placement's default and end the experiment.

    ``srm_ok`` is the caller's verdict on the analysis (analytics' sample-ratio-mismatch
    check): False refuses, because a mismatch means the split itself is broken and no
    winner can be trusted. The placement takes the variant's strategy override (if any),
    its promotions setting and its model version override (if any). Audited as the
    experiment's promote and, when the placement changes, the placement's update.
    """
    experiment = _locked(experiment)
    if experiment.status not in (Experiment.Status.RUNNING, Experiment.Status.STOPPED):
        raise CampaignsConflict(f"a {experiment.status} experiment cannot promote a winner", "invalid_status")
    if not srm_ok:
        raise CampaignsConflict(
            "the sample ratio check failed: the traffic split is not as allocated, so no winner can be trusted",
            "srm_failed",
        )
    variant = ExperimentVariant.objects.filter(experiment=experiment, name=variant_name).first()
    if variant is None:
        raise ValidationError({"variant": [f"no variant named {variant_name!r} in this experiment"]})
    before = experiment_record(experiment)
    experiment.winner = variant.name
    _finish(experiment, Experiment.Status.PROMOTED, now or timezone.now())
    experiment = _fresh(experiment)
    _audit(
        shop=experiment.shop,
        actor=actor,
        action="promote",
        object_type="experiment",
        obj=experiment,
        before=before,
        after=experiment_record(experiment),
    )
    changes: dict[str, Any] = {"promotions_enabled": variant.promotions_on}
    if variant.strategy_id is not None:
        changes["default_strategy"] = variant.strategy
    if variant.model_version_id is not None:
        changes["model_version_id"] = variant.model_version_id
    placement_update(placement=experiment.placement, actor=actor, fields=changes)
    return experiment


def experiments_advance(*, now: datetime | None = None) -> tuple[int, int]:
    """Bring stored statuses in line with the clock: scheduled experiments whose start has
    passed become running, running ones whose stop has passed become stopped (audited as
    the system). Serving does not wait for this - it evaluates the times itself. Returns
    (started, stopped). Idempotent; safe to run concurrently (rows are locked)."""
    moment = now or timezone.now()
    actor = Actor.system("experiment schedule")
    started = stopped = 0
    for experiment in Experiment.objects.filter(status=Experiment.Status.SCHEDULED, starts_at__lte=moment):
        try:
            experiment_start(experiment=experiment, actor=actor, now=moment)
            started += 1
        except (CampaignsConflict, ValidationError):
            experiment_stop(experiment=experiment, actor=actor, now=moment)  # its window has passed or is blocked
            stopped += 1
    for experiment in Experiment.objects.filter(status=Experiment.Status.RUNNING, stops_at__lte=moment):
        experiment_stop(experiment=experiment, actor=actor, now=moment)
        stopped += 1
    return started, stopped

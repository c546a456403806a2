"""The campaign state of one shop, read once and shared by every request of a process.

The request path must not touch the database. ``state_load`` reads a shop's placements,
strategies, published promotions, active seasonal boosts and scheduled or running
experiments into immutable objects; ``CampaignStateCache`` keeps one per shop and
reloads it when the shop's ``CampaignsVersion`` (or time zone) moved, checking at most
once every ``refresh_s`` seconds (one indexed read). Every campaigns service bumps that
version in the transaction that makes the change, so a process sees a change within
about ``refresh_s`` of its commit.

What is live at an instant is not decided here: the state holds everything that may be
live at some instant, and ``placement_resolve`` / ``rules_compile`` evaluate it at the
instant they are given (time travel is the same code with another instant).
"""

import threading
import time
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from django.conf import settings

from campaigns.models import (
    Experiment,
    ExperimentVariant,
    Placement,
    Promotion,
    SeasonalBoost,
    Strategy,
)
from campaigns.schedule import Schedule, SeasonalWindow
from campaigns.strategy import StrategyConfig
from campaigns.targets import Target
from catalog.models import Shop


@dataclass(frozen=True)
class PlacementState:
    id: int
    slug: str
    name: str
    kind: str
    strategy_id: int
    strategy: StrategyConfig
    promotions_enabled: bool
    model_version_id: int | None


@dataclass(frozen=True)
class PromotionRule:
    id: int
    name: str
    action: str  # Promotion.Action value
    target: Target
    slot: int | None
    factor: float | None
    priority: int
    created_at: datetime
    all_placements: bool
    placement_ids: frozenset[int]
    schedule: Schedule

    def applies_to(self, placement_id: int) -> bool:
        return self.all_placements or placement_id in self.placement_ids


@dataclass(frozen=True)
class SeasonalRule:
    id: int
    name: str
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    factor: float
    window: SeasonalWindow
    ramp_up_days: int
    ramp_down_days: int


@dataclass(frozen=True)
class VariantState:
    name: str
    is_control: bool
    allocation: int  # percent of the non-held-out units
    strategy_id: int | None
    strategy: StrategyConfig | None  # None: the placement's default
    promotions_on: bool
    model_version_id: int | None


@dataclass(frozen=True)
class ExperimentState:
    id: int
    name: str
    placement_id: int
    salt: str
    version: int
    holdout_percent: int
    variants: tuple[VariantState, ...]
    starts_at: datetime  # running: when it started; scheduled: when it will
    stops_at: datetime | None

    def running_at(self, at: datetime) -> bool:
        return self.starts_at <= at and (self.stops_at is None or at < self.stops_at)


@dataclass(frozen=True)
class CampaignState:
    shop_id: int
    version: int  # CampaignsVersion.version when read
    timezone: str
    placements: Mapping[str, PlacementState]  # by slug
    promotions: tuple[PromotionRule, ...]  # published, in conflict order (priority, then oldest)
    seasonal_boosts: tuple[SeasonalRule, ...]  # active ones, oldest first
    experiments: Mapping[int, tuple[ExperimentState, ...]]  # by placement id
    tz: zoneinfo.ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", zoneinfo.ZoneInfo(self.timezone))


def campaigns_version_key(shop_id: int) -> tuple[int, str] | None:
    """(campaigns version, shop time zone), or None for an unknown shop. One indexed read."""
    row = Shop.objects.filter(pk=shop_id).values_list("campaigns_version__version", "timezone").first()
    if row is None:
        return None
    return (row[0] or 0, row[1])


def state_load(shop_id: int) -> CampaignState:
    """Read the shop's campaign state (a handful of queries, no N+1)."""
    key = campaigns_version_key(shop_id)
    if key is None:
        raise LookupError(f"no shop with id {shop_id}")
    version, timezone = key
    strategies = {s.pk: s.strategy for s in Strategy.objects.filter(shop_id=shop_id)}
    placements = {
        p.slug: PlacementState(
            id=p.pk,
            slug=p.slug,
            name=p.name,
            kind=p.kind,
            strategy_id=p.default_strategy_id,
            strategy=strategies[p.default_strategy_id],
            promotions_enabled=p.promotions_enabled,
            model_version_id=p.model_version_id,
        )
        for p in Placement.objects.filter(shop_id=shop_id).order_by("slug")
    }
    # Every published promotion, ended ones too: the state does not depend on when it was
    # read, so time travel works both ways (an ended promotion costs one comparison).
    promotions = tuple(
        _promotion_rule(p)
        for p in Promotion.objects.filter(shop_id=shop_id, status=Promotion.Status.PUBLISHED)
        .prefetch_related("placements")
        .order_by("-priority", "created_at", "id")
    )
    boosts = tuple(
        SeasonalRule(
            id=b.pk,
            name=b.name,
            categories=tuple(b.categories),
            tags=tuple(b.tags),
            factor=b.factor,
            window=b.window,
            ramp_up_days=b.ramp_up_days,
            ramp_down_days=b.ramp_down_days,
        )
        for b in SeasonalBoost.objects.filter(shop_id=shop_id, active=True).order_by("created_at", "id")
    )
    experiments: dict[int, list[ExperimentState]] = {}
    live = (
        Experiment.objects.filter(shop_id=shop_id, status__in=[Experiment.Status.RUNNING, Experiment.Status.SCHEDULED])
        .prefetch_related("variants")
        .order_by("id")
    )
    for experiment in live:
        state = _experiment_state(experiment, strategies)
        if state is not None:
            experiments.setdefault(experiment.placement_id, []).append(state)
    return CampaignState(
        shop_id=shop_id,
        version=version,
        timezone=timezone,
        placements=MappingProxyType(placements),
        promotions=promotions,
        seasonal_boosts=boosts,
        experiments=MappingProxyType({k: tuple(v) for k, v in experiments.items()}),
    )


def _promotion_rule(promotion: Promotion) -> PromotionRule:
    return PromotionRule(
        id=promotion.pk,
        name=promotion.name,
        action=promotion.action,
        target=promotion.target_spec,
        slot=promotion.slot,
        factor=promotion.factor,
        priority=promotion.priority,
        created_at=promotion.created_at,
        all_placements=promotion.all_placements,
        placement_ids=frozenset(p.pk for p in promotion.placements.all()),
        schedule=promotion.schedule,
    )


def _experiment_state(experiment: Experiment, strategies: dict[int, StrategyConfig]) -> ExperimentState | None:
    starts_at = experiment.started_at if experiment.status == Experiment.Status.RUNNING else experiment.starts_at
    if starts_at is None:
        return None
    variants: list[ExperimentVariant] = list(experiment.variants.all())
    return ExperimentState(
        id=experiment.pk,
        name=experiment.name,
        placement_id=experiment.placement_id,
        salt=experiment.salt,
        version=experiment.version,
        holdout_percent=experiment.holdout_percent,
        variants=tuple(
            VariantState(
                name=v.name,
                is_control=v.is_control,
                allocation=v.allocation,
                strategy_id=v.strategy_id,
                strategy=strategies[v.strategy_id] if v.strategy_id is not None else None,
                promotions_on=v.promotions_on,
                model_version_id=v.model_version_id,
            )
            for v in variants
        ),
        starts_at=starts_at,
        stops_at=experiment.stops_at,
    )


class CampaignStateCache:
    """One CampaignState per shop for this process, reloaded when its version moves.

    ``get`` costs nothing between checks; at most once every ``refresh_s`` seconds per
    shop it reads the version (one indexed query) and reloads only if it changed.
    Thread-safe: a reload happens under a lock; readers keep the state they hold.
    """

    def __init__(self, refresh_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.refresh_s = settings.SERVING_REFRESH_S if refresh_s is None else refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[CampaignState, float]] = {}  # shop id -> (state, checked at)

    def get(self, shop_id: int) -> CampaignState:
        entry = self._entries.get(shop_id)
        now = self._clock()
        if entry is not None and now - entry[1] < self.refresh_s:
            return entry[0]
        with self._lock:
            entry = self._entries.get(shop_id)
            if entry is not None and now - entry[1] < self.refresh_s:
                return entry[0]
            key = campaigns_version_key(shop_id)
            if entry is not None and key == (entry[0].version, entry[0].timezone):
                state = entry[0]
            else:
                state = state_load(shop_id)
            self._entries[shop_id] = (state, now)
            return state

    def forget(self, shop_id: int) -> None:
        with self._lock:
            self._entries.pop(shop_id, None)


_process_cache: CampaignStateCache | None = None


def campaign_state(shop_id: int) -> CampaignState:
    """The process-wide cached campaign state of a shop (what serving calls per request)."""
    global _process_cache
    if _process_cache is None:
        _process_cache = CampaignStateCache()
    return _process_cache.get(shop_id)

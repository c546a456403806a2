"""Serving one recommendation request, and previewing one for the console.

``recommendations_serve`` is the request path of ARCHITECTURE.md behind the API's key
check (step 1): resolve the placement for the shopper (step 2: experiment variant,
strategy, promotions, model version), read the shopper's latest events from the cache
when the strategy uses them, run the pipeline (steps 3-7, recommender.serving.pipeline),
record what was served (step 8, recommender.serving.log: buffered, never on this
thread's clock). It reads only the in-memory serving state and the cache: no database.

``recommendations_preview`` runs the same pipeline for the console, with time travel
(``at``), a chosen variant, promotions switched off one by one, and a pretend session;
it returns the full provenance plus what the rules removed and why, and logs nothing.
"""

import hashlib
import hmac
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from django.utils import timezone

from campaigns.assignment import Resolution, placement_resolve, running_experiment
from campaigns.candidates import Candidate
from campaigns.models import HOLDOUT
from campaigns.rules import CompiledRules, rules_compile
from campaigns.strategy import StrategyConfig
from catalog.models import Shop
from catalog.selectors import NO_HISTORY, ShopperHistory, shopper_history
from catalog.services import shopper_key_hash
from catalog.snapshot import CatalogSnapshot
from recommender.serving import pipeline
from recommender.serving.log import ServedRecord, served_log
from recommender.serving.pipeline import PipelineResult, ServedItem
from recommender.serving.signals import signals_build
from recommender.serving.state import ServingState, registry

# Sources that read the shopper's history; the co-occurrence and similar sources read
# it only when the request names no context items.
PERSONAL_SOURCES = frozenset({"personal", "session"})
HISTORY_WITHOUT_CONTEXT = frozenset({"similar", "also_viewed", "bought_together"})


@dataclass(frozen=True)
class RecommendationRequest:
    placement_slug: str
    shopper_id: str | None = None
    context_skus: tuple[str, ...] = ()
    limit: int | None = None  # None: the strategy's size
    explain: bool = False


@dataclass(frozen=True, eq=False)
class Recommendations:
    request_id: uuid.UUID
    placement: str
    resolution: Resolution
    snapshot: CatalogSnapshot  # the items' indices point into it
    result: PipelineResult
    model_versions: dict[str, int]

    @property
    def variant(self) -> str | None:
        return self.resolution.variant

    @property
    def items(self) -> list[ServedItem]:
        return self.result.items


def reads_history(strategy: StrategyConfig, context_skus: Sequence[str]) -> bool:
    """Whether a list for this strategy depends on the shopper's events."""
    sources = set(strategy.weights)
    return bool(
        sources & PERSONAL_SOURCES
        or strategy.filters.exclude_purchased
        or (not context_skus and sources & HISTORY_WITHOUT_CONTEXT)
    )


def unit_hash(shop: Shop, unit_id: str) -> str:
    """The keyed hash of an assignment unit logged with a served list: the same unit
    gives the same hash (exposures count units), distinct from Shopper.key_hash."""
    return hmac.new(shop.shopper_secret.encode(), b"unit\x00" + unit_id.encode("utf-8"), hashlib.sha256).hexdigest()


def recommendations_serve(
    *,
    shop: Shop,
    request: RecommendationRequest,
    started: float | None = None,
    prefetched: Mapping[str, Any] = MappingProxyType({}),
) -> Recommendations:
    """Serve one request (see the module docstring). Raises UnknownPlacement.

    ``started``: ``time.perf_counter()`` when the request arrived, for the logged latency.
    ``prefetched``: cache values read ahead by key (the shopper's history, see
    ``catalog.selectors.shopper_history_key``). Non-personal lists come from the state's cache
    (recommender.serving.cache)."""
    started = time.perf_counter() if started is None else started
    at = timezone.now()
    state = registry.state(shop.pk)
    resolution = placement_resolve(state.campaigns, request.placement_slug, request.shopper_id, at)
    size = request.limit or resolution.strategy.size
    rules = state.rules_for(request.placement_slug, at) if resolution.promotions_apply else None
    personal = bool(request.shopper_id) and reads_history(resolution.strategy, request.context_skus)
    cache_key = None
    result = None
    if not personal:
        cache_key = (
            request.placement_slug,
            resolution.strategy_id,
            resolution.strategy,
            resolution.promotions_apply,
            resolution.model_version_id,
            resolution.variant,
            request.context_skus,
            size,
            request.explain,
            rules.at if rules is not None else None,
        )
        result = state.cache.get(cache_key)
    if result is None:
        history = NO_HISTORY
        if personal:
            assert request.shopper_id is not None
            history = shopper_history(shop, request.shopper_id, prefetched=prefetched)
        signals = signals_build(state.snapshot, request.context_skus, history, at.timestamp())
        result = pipeline.run(
            state,
            state.view_for(resolution.model_version_id),
            resolution.strategy,
            signals,
            size=size,
            rules=rules,
            explain=request.explain,
        )
        if cache_key is not None:
            state.cache.put(cache_key, result)
        session = signals.session_id
    else:
        session = ""
    served = Recommendations(
        request_id=uuid.uuid4(),
        placement=request.placement_slug,
        resolution=resolution,
        snapshot=state.snapshot,
        result=result,
        model_versions=state.model_versions(resolution.model_version_id),
    )
    served_log.record(
        ServedRecord(
            request_id=served.request_id,
            shop_id=shop.pk,
            placement_slug=request.placement_slug,
            experiment_id=resolution.experiment_id,
            experiment_version=resolution.experiment_version,
            variant=resolution.variant or "",
            shopper_key_hash=shopper_key_hash(shop, request.shopper_id) if request.shopper_id else "",
            unit_hash=unit_hash(shop, request.shopper_id) if request.shopper_id else "",
            session=session,
            context_skus=list(request.context_skus),
            items=log_items(state.snapshot, result.items),
            model_versions=served.model_versions,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            served_at=at,
        )
    )
    return served


def log_items(snapshot: CatalogSnapshot, items: Sequence[ServedItem]) -> list[dict[str, object]]:
    """The items as ServedList.items stores them (positions 1-based, full provenance)."""
    return [
        {
            "product_id": int(snapshot.product_ids[item.index]),
            "sku": snapshot.skus[item.index],
            "position": position,
            "score": item.score,
            "sources": item.sources,
            "promotion_ids": item.promotion_ids,
            "seasonal_boost_ids": item.seasonal_boost_ids,
            "reasons": [*item.reasons, *item.rule_reasons],
        }
        for position, item in enumerate(items, start=1)
    ]


# -- preview ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Preview:
    """What a placement would serve, with everything that decided it."""

    at: datetime
    placement: str
    resolution: Resolution
    snapshot: CatalogSnapshot
    items: list[ServedItem]
    removed: list[Candidate] = field(default_factory=list)  # candidates the rules removed, with reasons
    notes: list[str] = field(default_factory=list)  # pins that could not be placed, and why
    model_versions: dict[str, int] = field(default_factory=dict)
    live_rules: int = 0


def _resolution_for_variant(state: ServingState, placement_slug: str, variant: str, at: datetime) -> Resolution:
    """The resolution a unit in ``variant`` of the placement's experiment running at
    ``at`` gets (``"holdout"``: the placement's default, logged as held out)."""
    default = placement_resolve(state.campaigns, placement_slug, None, at)
    experiment = running_experiment(state.campaigns, default.placement, at)
    if experiment is None:
        raise LookupError(f"no experiment runs on {placement_slug} at {at.isoformat()}")
    exposed = replace(default, experiment_id=experiment.id, experiment_version=experiment.version)
    if variant == HOLDOUT:
        return replace(exposed, variant=HOLDOUT)
    chosen = next((v for v in experiment.variants if v.name == variant), None)
    if chosen is None:
        raise LookupError(f"experiment {experiment.name!r} has no variant {variant!r}")
    placement = default.placement
    return replace(
        exposed,
        strategy_id=chosen.strategy_id if chosen.strategy_id is not None else placement.strategy_id,
        strategy=chosen.strategy if chosen.strategy is not None else placement.strategy,
        promotions_apply=chosen.promotions_on,
        model_version_id=chosen.model_version_id if chosen.model_version_id is not None else placement.model_version_id,
        variant=chosen.name,
    )


def recommendations_preview(
    *,
    shop: Shop,
    placement_slug: str,
    shopper_id: str | None = None,
    session_items: Sequence[str] = (),
    at: datetime | None = None,
    variant: str | None = None,
    disabled_promotion_ids: Collection[int] = (),
    limit: int | None = None,
) -> Preview:
    """The list ``placement_slug`` serves at ``at`` (default now), computed by the same
    pipeline as the API, with full provenance and the rules' removed items and notes.

    ``shopper_id``: read that shopper's events (only those up to ``at``). ``session_items``:
    SKUs viewed in a pretend live session at ``at`` (the session source reads them).
    ``variant``: serve as that variant of the experiment running at ``at`` (LookupError if
    there is none). ``disabled_promotion_ids``: promotions left out, to see what they
    change. Raises UnknownPlacement. Logs nothing."""
    at = at or timezone.now()
    state = registry.state(shop.pk)
    campaigns = state.campaigns
    if disabled_promotion_ids:
        disabled = set(disabled_promotion_ids)
        campaigns = replace(campaigns, promotions=tuple(p for p in campaigns.promotions if p.id not in disabled))
        state = replace(state, campaigns=campaigns, rules={})
    if variant is not None:
        resolution = _resolution_for_variant(state, placement_slug, variant, at)
    else:
        resolution = placement_resolve(campaigns, placement_slug, shopper_id, at)
    rules: CompiledRules | None = None
    if resolution.promotions_apply:
        minute = int(at.timestamp() // 60)
        rules = state.rules.get((placement_slug, minute)) or rules_compile(
            campaigns, state.snapshot, placement_slug, at
        )
    history = shopper_history(shop, shopper_id).until(at.timestamp()) if shopper_id else NO_HISTORY
    pretend = [
        (int(state.snapshot.product_ids[index]), "view", at.timestamp(), "preview")
        for index in state.snapshot.indices_of_skus(session_items)
    ]
    if pretend:
        history = ShopperHistory.from_rows([*reversed(pretend), *history.rows()])
    signals = signals_build(state.snapshot, (), history, at.timestamp())
    result = pipeline.run(
        state,
        state.view_for(resolution.model_version_id),
        resolution.strategy,
        signals,
        size=limit or resolution.strategy.size,
        rules=rules,
        explain=True,
    )
    return Preview(
        at=at,
        placement=placement_slug,
        resolution=resolution,
        snapshot=state.snapshot,
        items=result.items,
        removed=result.removed,
        notes=result.notes,
        model_versions=state.model_versions(resolution.model_version_id),
        live_rules=result.live_rules,
    )

"""Reads behind the console's recommendation-showing regions: the preview page, the
live previews of the strategy and promotion editors, the product page's lists and a
shopper's current recommendations.

Everything runs the serving pipeline on the shop's serving state (never the API, so
nothing is logged as served) and turns its output into rows a template can show: the
product's fields from the catalog snapshot, the provenance of each item, and where two
lists are compared, what changed between them. No query per item.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
from django.utils import timezone

from campaigns.assignment import UnknownPlacement, running_experiment
from campaigns.candidates import Candidate
from campaigns.models import HOLDOUT
from campaigns.rules import SEASONAL, CompiledRules, rules_compile
from campaigns.state import CampaignState, PromotionRule
from campaigns.strategy import StrategyConfig
from catalog.models import Shop
from catalog.selectors import NO_HISTORY
from catalog.snapshot import CatalogSnapshot
from recommender.serving import pipeline
from recommender.serving.pipeline import PipelineResult, ServedItem
from recommender.serving.service import Preview, recommendations_preview
from recommender.serving.signals import signals_build
from recommender.serving.state import ServingState, registry

CONTEXT_SOURCES = frozenset({"similar", "also_viewed", "bought_together"})
CONTEXT_KINDS = frozenset({"product", "cart"})
PRODUCT_LIST_SIZE = 8
PROMOTION_PREVIEW_PLACEMENTS = 6
TEXT_KINDS = frozenset({"text_similarity"})  # models of product text only, not interactions
DRAFT_PROMOTION_ID = -1  # the id a promotion not saved yet has in a preview


def serving_state(shop: Shop) -> ServingState:
    """The shop's serving state in this process, brought up to date with the database
    first (one poll of the change counters), so a change saved a moment ago shows."""
    state = registry.state(shop.pk)
    if registry.refresh(shop.pk):
        state = registry.state(shop.pk)
    return state


# -- rows --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemRow:
    """One served item as the console shows it."""

    position: int  # 1-based
    sku: str
    title: str
    url: str
    image_url: str
    price: float
    category: str
    score: float
    sources: list[tuple[str, float]]  # (source, raw score), highest raw score first
    reasons: list[str]
    rule_reasons: list[str]
    promotion_ids: list[int]
    seasonal_boost_ids: list[int]
    pinned_slot: int | None
    buried: bool
    fallback: str | None
    change: str = ""  # against the compared list: "", "new", "up", "down"
    change_label: str = ""  # e.g. "not in the other list", "up 2 (was 4)"

    # Formatted here rather than with floatformat, which costs milliseconds a page.
    @property
    def price_text(self) -> str:
        return f"{self.price:.2f}"

    @property
    def score_text(self) -> str:
        return f"{self.score:.3f}"

    @property
    def sources_text(self) -> list[tuple[str, str]]:
        return [(name, f"{raw:.4f}") for name, raw in self.sources]


@dataclass(frozen=True)
class RemovedRow:
    sku: str
    title: str
    reasons: list[str]


def item_rows(snapshot: CatalogSnapshot, items: Sequence[ServedItem]) -> list[ItemRow]:
    rows = []
    for position, item in enumerate(items, start=1):
        i = item.index
        rows.append(
            ItemRow(
                position=position,
                sku=snapshot.skus[i],
                title=snapshot.titles[i],
                url=snapshot.urls[i],
                image_url=snapshot.image_urls[i],
                price=float(snapshot.prices[i]),
                category=snapshot.category_path(i),
                score=item.score,
                sources=sorted(item.sources.items(), key=lambda pair: -pair[1]),
                reasons=list(item.reasons),
                rule_reasons=list(item.rule_reasons),
                promotion_ids=list(item.promotion_ids),
                seasonal_boost_ids=list(item.seasonal_boost_ids),
                pinned_slot=item.pinned_slot,
                buried=item.buried,
                fallback=item.fallback,
            )
        )
    return rows


def removed_rows(snapshot: CatalogSnapshot, removed: Sequence[Candidate]) -> list[RemovedRow]:
    return [
        RemovedRow(sku=snapshot.skus[c.index], title=snapshot.titles[c.index], reasons=list(c.reasons)) for c in removed
    ]


def compare_rows(rows: Sequence[ItemRow], other: Sequence[ItemRow]) -> list[ItemRow]:
    """``rows`` marked with what differs from ``other``: items it lacks, items higher or
    lower than there. Items at the same position are left unmarked."""
    where = {row.sku: row.position for row in other}
    marked = []
    for row in rows:
        was = where.get(row.sku)
        if was is None:
            marked.append(replace(row, change="new", change_label="not in the other list"))
        elif was > row.position:
            marked.append(replace(row, change="up", change_label=f"up {was - row.position} (there {was})"))
        elif was < row.position:
            marked.append(replace(row, change="down", change_label=f"down {row.position - was} (there {was})"))
        else:
            marked.append(row)
    return marked


def lists_differ(a: Sequence[ItemRow], b: Sequence[ItemRow]) -> bool:
    return [r.sku for r in a] != [r.sku for r in b]


# -- the preview page -------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacementOption:
    slug: str
    name: str
    kind: str


@dataclass(frozen=True)
class LiveRule:
    """A promotion or seasonal boost live on a placement at an instant."""

    id: int
    kind: str  # pin, boost, bury, exclude, restrict, seasonal
    name: str
    reason: str


@dataclass(frozen=True)
class RunningExperiment:
    id: int
    name: str
    variants: list[str]  # variant names, then "holdout" when some units are held out


def placement_options(state: ServingState) -> list[PlacementOption]:
    return [PlacementOption(slug=p.slug, name=p.name, kind=p.kind) for p in state.campaigns.placements.values()]


def live_rules(state: ServingState, placement_slug: str, at: datetime) -> list[LiveRule]:
    """The promotions and seasonal boosts live on the placement at ``at``, in rule order
    (whether or not the placement applies them: the result says that separately).
    Raises UnknownPlacement."""
    compiled = rules_compile(state.campaigns, state.snapshot, placement_slug, at)
    return [LiveRule(id=r.source_id, kind=r.kind, name=r.name, reason=r.reason) for r in compiled.rules]


def experiment_running(state: ServingState, placement_slug: str, at: datetime) -> RunningExperiment | None:
    placement = state.campaigns.placements.get(placement_slug)
    if placement is None:
        raise UnknownPlacement(placement_slug)
    experiment = running_experiment(state.campaigns, placement, at)
    if experiment is None:
        return None
    names = [v.name for v in experiment.variants]
    if experiment.holdout_percent:
        names.append(HOLDOUT)
    return RunningExperiment(id=experiment.id, name=experiment.name, variants=names)


@dataclass(frozen=True)
class PreviewList:
    """One previewed list with what decided it."""

    at: datetime
    placement: str
    strategy_id: int
    variant: str | None
    experiment_id: int | None
    promotions_apply: bool
    model_versions: dict[str, int]
    live_rules: int
    items: list[ItemRow]
    removed: list[RemovedRow]
    notes: list[str]


def preview_list(preview: Preview, items: list[ItemRow] | None = None) -> PreviewList:
    return PreviewList(
        at=preview.at,
        placement=preview.placement,
        strategy_id=preview.resolution.strategy_id,
        variant=preview.resolution.variant,
        experiment_id=preview.resolution.experiment_id,
        promotions_apply=preview.resolution.promotions_apply,
        model_versions=dict(preview.model_versions),
        live_rules=preview.live_rules,
        items=items if items is not None else item_rows(preview.snapshot, preview.items),
        removed=removed_rows(preview.snapshot, preview.removed),
        notes=list(preview.notes),
    )


@dataclass(frozen=True)
class PreviewComparison:
    """The list with every live rule, and (when promotions are switched off) the list
    without them, each marked against the other."""

    current: PreviewList
    switched_off: PreviewList | None = None
    differs: bool = False


def preview_compare(*, disabled_promotion_ids: Collection[int] = (), **asked: Any) -> PreviewComparison:
    """``recommendations_preview`` with ``asked`` (its keyword arguments), and when
    ``disabled_promotion_ids`` are given, again without those promotions, at the same
    instant. Raises what it raises: UnknownPlacement, LookupError for an unknown variant."""
    asked["at"] = asked.get("at") or timezone.now()
    current = recommendations_preview(**asked)
    if not disabled_promotion_ids:
        return PreviewComparison(current=preview_list(current))
    without = recommendations_preview(**asked, disabled_promotion_ids=disabled_promotion_ids)
    rows = item_rows(current.snapshot, current.items)
    other = item_rows(without.snapshot, without.items)
    return PreviewComparison(
        current=preview_list(current, compare_rows(rows, other)),
        switched_off=preview_list(without, compare_rows(other, rows)),
        differs=lists_differ(rows, other),
    )


@dataclass(frozen=True)
class ProductOption:
    sku: str
    title: str


def product_options(state: ServingState, query: str, limit: int = 10) -> list[ProductOption]:
    """Products whose SKU or title contains ``query`` (any case), recommendable first,
    for the session builder's autocomplete. On the snapshot: no query."""
    needle = query.strip().casefold()
    if not needle:
        return []
    snapshot = state.snapshot
    found = [
        i
        for i, (sku, title) in enumerate(zip(snapshot.skus, snapshot.titles, strict=True))
        if needle in sku.casefold() or needle in title.casefold()
    ]
    recommendable = snapshot.recommendable
    found.sort(key=lambda i: (not recommendable[i], snapshot.skus[i].casefold() != needle, snapshot.skus[i]))
    return [ProductOption(sku=snapshot.skus[i], title=snapshot.titles[i]) for i in found[:limit]]


def known_skus(state: ServingState, skus: Sequence[str]) -> tuple[list[str], list[str]]:
    """(known, unknown) SKUs, each in the given order."""
    index = state.snapshot.index_by_sku
    return [s for s in skus if s in index], [s for s in skus if s not in index]


# -- running the pipeline on an edited strategy or promotion ------------------------------------


def _run(
    state: ServingState,
    strategy: StrategyConfig,
    *,
    at: datetime,
    rules: CompiledRules | None,
    context_skus: Sequence[str] = (),
    model_version_id: int | None = None,
    size: int | None = None,
) -> PipelineResult:
    signals = signals_build(state.snapshot, context_skus, NO_HISTORY, at.timestamp())
    return pipeline.run(
        state,
        state.view_for(model_version_id),
        strategy,
        signals,
        size=size or strategy.size,
        rules=rules,
        explain=True,
    )


def _rules(
    campaigns: CampaignState, snapshot: CatalogSnapshot, placement_slug: str, at: datetime
) -> CompiledRules | None:
    placement = campaigns.placements[placement_slug]
    return rules_compile(campaigns, snapshot, placement_slug, at) if placement.promotions_enabled else None


def sample_context(state: ServingState, at: datetime) -> str | None:
    """A product to stand for "the product on the page" in previews of strategies that
    read the page's product: the top trending product, else the newest recommendable one."""
    trending = _run(state, StrategyConfig(sources=(("trending", 1.0),), size=1), at=at, rules=None)
    if trending.items:
        return state.snapshot.skus[trending.items[0].index]
    return None


@dataclass(frozen=True)
class StrategyPreview:
    placement: PlacementOption | None  # whose promotions apply; None: no placement uses it
    context_sku: str | None  # the product the lists are served for, when the strategy reads one
    context_title: str
    items: list[ItemRow]
    saved: list[ItemRow] | None  # the strategy as saved, when it is being edited
    differs: bool
    empty_sources: list[str]  # weighted sources that proposed nothing here
    live_rules: int


def strategy_preview(
    shop: Shop,
    *,
    strategy: StrategyConfig,
    saved: StrategyConfig | None = None,
    placement_slug: str | None = None,
    at: datetime | None = None,
) -> StrategyPreview:
    """What ``strategy`` serves an anonymous visitor now (on the page of a sample product
    when it reads one), with the rules of ``placement_slug`` when it applies them, next to
    what the saved version serves."""
    at = at or timezone.now()
    state = serving_state(shop)
    campaigns = state.campaigns
    placement = campaigns.placements.get(placement_slug) if placement_slug else None
    rules = _rules(campaigns, state.snapshot, placement.slug, at) if placement else None
    reads_context = bool(set(strategy.weights) & CONTEXT_SOURCES) or (
        placement is not None and placement.kind in CONTEXT_KINDS
    )
    context = sample_context(state, at) if reads_context else None
    context_skus = (context,) if context else ()
    edited = _run(state, strategy, at=at, rules=rules, context_skus=context_skus)
    rows = item_rows(state.snapshot, edited.items)
    saved_rows = None
    if saved is not None:
        saved_rows = item_rows(
            state.snapshot, _run(state, saved, at=at, rules=rules, context_skus=context_skus, size=strategy.size).items
        )
        rows, saved_rows = compare_rows(rows, saved_rows), compare_rows(saved_rows, rows)
    proposing = {name for item in edited.items for name in item.sources}
    return StrategyPreview(
        placement=PlacementOption(slug=placement.slug, name=placement.name, kind=placement.kind) if placement else None,
        context_sku=context,
        context_title=state.snapshot.titles[state.snapshot.index_by_sku[context]] if context else "",
        items=rows,
        saved=saved_rows,
        differs=saved_rows is not None and lists_differ(rows, saved_rows),
        empty_sources=[name for name in strategy.weights if name not in proposing],
        live_rules=edited.live_rules,
    )


@dataclass(frozen=True)
class AffectedPlacement:
    placement: PlacementOption
    promotions_enabled: bool
    before: list[ItemRow]
    after: list[ItemRow]
    removed: list[RemovedRow]  # what the rules with this promotion removed, with reasons
    notes: list[str]
    changed_slots: list[int]  # 1-based slots whose item differs


@dataclass(frozen=True)
class PromotionPreview:
    at: datetime
    live: bool  # whether the promotion's schedule is live at ``at``
    placements: list[AffectedPlacement]
    more_placements: int  # placements it applies to beyond those shown


def promotion_preview(shop: Shop, *, rule: PromotionRule, at: datetime) -> PromotionPreview:
    """Each placement ``rule`` applies to, served at ``at`` to an anonymous visitor (on the
    page of a sample product where the placement reads one) with the shop's published
    promotions but not this one ("before") and with it, as edited ("after")."""
    state = serving_state(shop)
    campaigns = state.campaigns
    others = tuple(p for p in campaigns.promotions if p.id != rule.id)
    after_promotions = tuple(sorted([*others, rule], key=lambda p: (-p.priority, p.created_at, p.id)))
    before_state = replace(campaigns, promotions=others)
    after_state = replace(campaigns, promotions=after_promotions)
    targets = [p for p in campaigns.placements.values() if rule.applies_to(p.id)]
    context: str | None = None
    shown = []
    live = False
    for placement in targets[:PROMOTION_PREVIEW_PLACEMENTS]:
        compiled = rules_compile(after_state, state.snapshot, placement.slug, at)
        live = live or any(r.source_id == rule.id and r.kind != SEASONAL for r in compiled.rules)
        after_rules = compiled if placement.promotions_enabled else None
        before_rules = rules_compile(before_state, state.snapshot, placement.slug, at) if after_rules else None
        context_skus: tuple[str, ...] = ()
        if placement.kind in CONTEXT_KINDS or set(placement.strategy.weights) & CONTEXT_SOURCES:
            context = context or sample_context(state, at)
            context_skus = (context,) if context else ()
        run = {"at": at, "context_skus": context_skus, "model_version_id": placement.model_version_id}
        before = _run(state, placement.strategy, rules=before_rules, **run)  # type: ignore[arg-type]
        after = _run(state, placement.strategy, rules=after_rules, **run)  # type: ignore[arg-type]
        before_rows = item_rows(state.snapshot, before.items)
        after_rows = item_rows(state.snapshot, after.items)
        shown.append(
            AffectedPlacement(
                placement=PlacementOption(slug=placement.slug, name=placement.name, kind=placement.kind),
                promotions_enabled=placement.promotions_enabled,
                before=compare_rows(before_rows, after_rows),
                after=compare_rows(after_rows, before_rows),
                removed=removed_rows(state.snapshot, after.removed),
                notes=after.notes,
                changed_slots=[
                    slot
                    for slot in range(1, max(len(before_rows), len(after_rows)) + 1)
                    if _sku_at(before_rows, slot) != _sku_at(after_rows, slot)
                ],
            )
        )
    return PromotionPreview(
        at=at, live=live, placements=shown, more_placements=max(0, len(targets) - PROMOTION_PREVIEW_PLACEMENTS)
    )


def _sku_at(rows: Sequence[ItemRow], slot: int) -> str | None:
    return rows[slot - 1].sku if slot <= len(rows) else None


# -- the product page and the shoppers page ---------------------------------------------------


@dataclass(frozen=True)
class ModelCoverage:
    kind: str
    version_id: int
    knows: bool  # the product was in this version's training data


@dataclass(frozen=True)
class ProductLists:
    in_snapshot: bool
    recommendable: bool
    similar: list[ItemRow]
    bought_together: list[ItemRow]
    also_viewed: list[ItemRow]
    models: list[ModelCoverage]
    fresh_embedding: bool  # embedded since the text model was trained (served from it)
    projected: bool  # placed into the collaborative space from its text (cold-start path)
    collaborative: str | None  # the collaborative model kind serving, if any
    cold_start: bool  # no model trained on interactions knows it: served from its text


def product_lists(shop: Shop, sku: str, *, at: datetime | None = None) -> ProductLists:
    """The product's similar-items, bought-together and also-viewed lists as the models
    serve them (no promotions: the models' own view), and how the models cover it."""
    at = at or timezone.now()
    state = serving_state(shop)
    index = state.snapshot.index_by_sku.get(sku)
    if index is None:
        return ProductLists(
            in_snapshot=False,
            recommendable=False,
            similar=[],
            bought_together=[],
            also_viewed=[],
            models=[],
            fresh_embedding=False,
            projected=False,
            collaborative=None,
            cold_start=True,
        )
    view = state.view_for(None)

    def lists(source: str) -> list[ItemRow]:
        strategy = StrategyConfig(sources=((source, 1.0),), size=PRODUCT_LIST_SIZE)
        result = _run(state, strategy, at=at, rules=None, context_skus=(sku,))
        rows = item_rows(state.snapshot, [item for item in result.items if item.fallback is None and item.sources])
        return [replace(row, position=position) for position, row in enumerate(rows, start=1)]

    models = [
        ModelCoverage(kind=kind, version_id=model.version_id, knows=bool(view.spaces[kind].from_snapshot[index] >= 0))
        for kind, model in sorted(view.models.items())
    ]
    collaborative = view.collaborative
    behavioural = [m for m in models if m.kind not in TEXT_KINDS]
    projected = bool(np.isin(index, view.fresh_collaborative.indices))
    return ProductLists(
        in_snapshot=True,
        recommendable=bool(state.snapshot.recommendable[index]),
        similar=lists("similar"),
        bought_together=lists("bought_together"),
        also_viewed=lists("also_viewed"),
        models=models,
        fresh_embedding=bool(np.isin(index, view.fresh_text.indices)),
        projected=projected,
        collaborative=collaborative,
        cold_start=not any(m.knows for m in behavioural),
    )


@dataclass(frozen=True)
class PlacementList:
    placement: PlacementOption
    needs_context: bool  # the placement is normally served with a product on the page
    list: PreviewList


def shopper_lists(shop: Shop, shopper_id: str, *, at: datetime | None = None) -> list[PlacementList]:
    """What every placement serves this shopper now (their variant, their history, no
    page context), computed like the preview: nothing is logged."""
    at = at or timezone.now()
    state = serving_state(shop)
    found = []
    for placement in state.campaigns.placements.values():
        preview = recommendations_preview(shop=shop, placement_slug=placement.slug, shopper_id=shopper_id, at=at)
        found.append(
            PlacementList(
                placement=PlacementOption(slug=placement.slug, name=placement.name, kind=placement.kind),
                needs_context=placement.kind in CONTEXT_KINDS,
                list=preview_list(preview),
            )
        )
    return found

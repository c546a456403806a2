"""Steps 3 to 7 of the request path (ARCHITECTURE.md), on one immutable serving state.

3. candidates from the strategy's sources (recommender.serving.sources), each with
   its own raw scores;
4. blend: ``recommender.algorithms.blend.blend``, the same normalised score fusion and
   the same settings (``default_blend.json``: normalisation, candidates per source) that
   offline evaluation uses, weighted by the strategy;
5. filter (recommender.serving.filters);
6. merchandising: ``campaigns.rules.rules_apply`` with the rules compiled for this
   minute, when the resolution says promotions apply;
7. diversity (category cap or MMR, pins kept at their slots), then fill from the
   fallbacks, so the list is never short while products pass the filters: trending,
   then every recommendable product, newest first; the category cap is relaxed last.

Every served item carries its provenance: the raw score of each source that proposed
it, the rules that moved it (reasons, promotion and seasonal boost ids), or the
fallback that supplied it.

``run`` reads only immutable objects (state, view, compiled rules) and builds new ones:
thread-safe, no database, no I/O.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from campaigns.candidates import Candidate, ScoredItems
from campaigns.rules import SEASONAL, CompiledRules, move_columns, rules_apply, rules_apply_detailed
from campaigns.strategy import StrategyConfig
from recommender.algorithms.blend import blend, default_blend
from recommender.algorithms.ranking import Ranking
from recommender.serving.bundle import ModelView
from recommender.serving.diversity import CategoryCap, arrange, mmr_order, prefix_filling
from recommender.serving.filters import passes
from recommender.serving.signals import Signals
from recommender.serving.sources import SOURCES, SourceInput
from recommender.serving.state import ServingState

BLEND = default_blend()
FALLBACK_CHUNK = 256
# The rules engine and diversity see this many candidates per served slot (at least
# RULES_POOL_MIN): enough for a category cap to skip over, few enough to stay cheap.
RULES_POOL_PER_SLOT = 4
RULES_POOL_MIN = 60
MAX_PUBLIC_REASONS = 2

PUBLIC_REASONS = {
    "personal": "Picked for you",
    "session": "Based on this visit",
    "similar": "Similar to what you are looking at",
    "also_viewed": "Shoppers who viewed this also viewed",
    "bought_together": "Often bought together",
    "trending": "Trending now",
    "new_arrivals": "New arrival",
}
FALLBACK_REASONS = {"trending": "Popular in the shop", "recent": "New in the shop"}


@dataclass(frozen=True, eq=False)
class ServedItem:
    index: int  # into the state's CatalogSnapshot
    score: float
    sources: dict[str, float]  # source -> raw score
    reasons: list[str]  # public: what proposed it
    rule_reasons: list[str]  # merchandising: what moved it (explain only)
    promotion_ids: list[int]
    seasonal_boost_ids: list[int]
    pinned_slot: int | None = None
    buried: bool = False
    fallback: str | None = None  # "trending" or "recent" when a fallback supplied it


@dataclass(frozen=True, eq=False)
class PipelineResult:
    items: list[ServedItem]
    removed: list[Candidate] = field(default_factory=list)  # by rules (explain only)
    notes: list[str] = field(default_factory=list)  # pins that could not be placed (explain only)
    live_rules: int = 0


def run(
    state: ServingState,
    view: ModelView,
    strategy: StrategyConfig,
    signals: Signals,
    *,
    size: int,
    rules: CompiledRules | None,
    explain: bool,
) -> PipelineResult:
    snapshot = state.snapshot
    source_input = SourceInput(
        view=view,
        signals=signals,
        new_arrivals=state.new_arrivals,
        created_ts=snapshot.created_ts,
        category_ids=snapshot.category_ids,
        k=BLEND.candidates_per_source,
    )
    weights = strategy.weights
    rankings = {name: SOURCES[name](source_input) for name in weights}
    fused = blend(rankings, weights, normalisation=BLEND.normalisation)
    items = fused.items.astype(np.int64)
    categories = state.category_filter(strategy.filters.categories)
    keep = passes(snapshot, items, strategy.filters, signals, categories)
    kept, kept_scores = items[keep], fused.scores[keep]
    pool = max(RULES_POOL_MIN, RULES_POOL_PER_SLOT * size)
    removed: list[Candidate] = []
    notes: list[str] = []
    live = rules is not None and not rules.empty
    if live:
        assert rules is not None
        candidates = ScoredItems(kept, kept_scores)
        blocked = set(signals.context.tolist()) | set(items[~keep].tolist())
        if explain:
            outcome = rules_apply_detailed(rules, candidates, size, pool=pool, blocked=blocked)
            ranked, removed, notes = outcome.served, outcome.removed, outcome.notes
        else:
            ranked = rules_apply(rules, candidates, size, pool=pool, blocked=blocked)
    else:
        if strategy.diversity.mmr_lambda <= 0:
            # The category cap stops once the list is full: the rest of the pool is never read.
            pool = prefix_filling(kept[:pool], snapshot.category_ids, strategy.diversity.max_per_category, size)
        ranked = [
            Candidate(index=i, score=s) for i, s in zip(kept[:pool].tolist(), kept_scores[:pool].tolist(), strict=True)
        ]
    chosen, fallback_of = _diversify_and_fill(
        state, view, strategy, signals, categories, ranked, size, rules if live else None
    )
    served = _provenance(chosen, rankings, weights, fallback_of, rules if live else None)
    return PipelineResult(
        items=served, removed=removed, notes=notes, live_rules=len(rules.rules) if live and rules else 0
    )


def _diversify_and_fill(
    state: ServingState,
    view: ModelView,
    strategy: StrategyConfig,
    signals: Signals,
    categories: np.ndarray | None,
    ranked: list[Candidate],
    size: int,
    rules: CompiledRules | None,
) -> tuple[list[Candidate], dict[int, str]]:
    """The final order: pins at their slots; unburied candidates (MMR, category cap);
    fallbacks (cap kept); buried candidates; candidates the cap held back; fallbacks
    without the cap."""
    snapshot = state.snapshot
    pinned = {c.pinned_slot: c for c in ranked if c.pinned_slot is not None and c.pinned_slot <= size}
    others = [c for c in ranked if c.pinned_slot is None]
    diversity = strategy.diversity
    if diversity.mmr_lambda > 0:
        others = mmr_order(others, diversity.mmr_lambda, view_vectors(view), snapshot.category_ids, size)
    cap = CategoryCap(diversity.max_per_category, snapshot.category_ids)
    for candidate in pinned.values():
        cap.count(candidate.index)
    wanted = size - len(pinned)
    taken: list[Candidate] = []
    held_back: list[Candidate] = []
    buried = [c for c in others if c.buried]
    for candidate in others:
        if len(taken) >= wanted:
            break
        if candidate.buried:
            continue
        (taken if cap.admit(candidate.index) else held_back).append(candidate)
    used = {c.index for c in ranked}
    fallback_of: dict[int, str] = {}
    if len(taken) < wanted:
        for index, origin, is_buried in _fallbacks(state, view, strategy, signals, categories, rules, used):
            if len(taken) >= wanted:
                break
            if is_buried:
                buried.append(Candidate(index=index, score=0.0, buried=True))
                fallback_of[index] = origin
            elif cap.admit(index):
                taken.append(Candidate(index=index, score=0.0))
                fallback_of[index] = origin
            else:
                held_back.append(Candidate(index=index, score=0.0))
                fallback_of[index] = origin
            used.add(index)
    for group in (buried, held_back):
        for candidate in group:
            if len(taken) >= wanted:
                break
            if all(candidate is not t for t in taken):
                taken.append(candidate)
    return arrange(pinned, taken, size), fallback_of


def _fallbacks(
    state: ServingState,
    view: ModelView,
    strategy: StrategyConfig,
    signals: Signals,
    categories: np.ndarray | None,
    rules: CompiledRules | None,
    used: set[int],
) -> Iterator[tuple[int, str, bool]]:
    """(snapshot index, origin, buried by a rule) of products that pass the strategy's
    filters and the rules: global trending first, then every product newest first."""
    snapshot = state.snapshot
    pools: list[tuple[str, np.ndarray]] = []
    trending = view.models.get("trending")
    if trending is not None and trending.trending is not None:
        lists = trending.trending
        pools.append(("trending", view.spaces["trending"].rankings_to_snapshot(lists.items, lists.scores).items))
    pools.append(("recent", state.by_recency))
    for origin, pool in pools:
        # Chunks double in size: a short list is filled from the first chunk, and one
        # that rules or the category cap keep short (every fallback buried or held back)
        # reaches the end of a large catalog in a dozen vectorised steps, not hundreds.
        start, chunk_size = 0, FALLBACK_CHUNK
        while start < len(pool):
            chunk = np.asarray(pool[start : start + chunk_size], dtype=np.int64)
            start, chunk_size = start + chunk_size, chunk_size * 2
            ok = passes(snapshot, chunk, strategy.filters, signals, categories)
            if rules is not None:
                ok &= ~rules.excluded[chunk]
                if rules.allowed is not None:
                    ok &= rules.allowed[chunk]
            for index in chunk[ok].tolist():
                if index not in used:
                    used.add(index)
                    yield index, origin, bool(rules is not None and rules.buried[index])


def view_vectors(view: ModelView):  # type: ignore[no-untyped-def]
    """A function giving normalised vectors for snapshot indices, for MMR: the text
    embeddings if loaded, else the collaborative vectors; None when neither is."""
    kind = "text_similarity" if "text_similarity" in view.models else view.collaborative
    if kind is None:
        return lambda indices: None
    vectors = view.models[kind].model.item_vectors()  # type: ignore[attr-defined]
    space = view.spaces[kind]

    def of(indices: np.ndarray) -> np.ndarray:
        items = space.from_snapshot[indices]
        out = np.zeros((len(indices), vectors.shape[1]), dtype=np.float64)
        known = items >= 0
        out[known] = vectors[items[known]]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)

    return of


def _raw_scores(rankings: dict[str, Ranking], indices: np.ndarray) -> list[dict[str, float]]:
    """Per served index, the raw score of every source that proposed it."""
    found: list[dict[str, float]] = [{} for _ in range(len(indices))]
    for name, ranking in rankings.items():
        if not len(ranking):
            continue
        # A ranking holds each item once: (ranking position, served row) of every match.
        positions, rows = np.nonzero(ranking.items[:, None] == indices[None, :])
        for position, row in zip(positions.tolist(), rows.tolist(), strict=True):
            found[row][name] = round(float(ranking.scores[position]), 6)
    return found


def _rule_ids(
    rules: CompiledRules | None, chosen: list[Candidate], indices: np.ndarray
) -> list[tuple[list[int], list[int]]]:
    """(promotion ids, seasonal boost ids) of the rules that moved each chosen item: the
    pin that placed a pinned item; the buries of a buried one; else its boosts and
    seasonal boosts (an item is buried exactly when the rules bury its product, fallbacks
    included). ``indices``: the chosen items' snapshot indices."""
    if rules is None or rules.empty or not chosen:
        return [([], []) for _ in chosen]
    result = []
    for candidate, columns in zip(chosen, move_columns(rules, indices), strict=True):
        if candidate.pinned_slot is not None:
            columns = () if candidate.pinned_by is None else (candidate.pinned_by,)
        promotions = [rules.rules[j].source_id for j in columns if rules.rules[j].kind != SEASONAL]
        seasonal = [rules.rules[j].source_id for j in columns if rules.rules[j].kind == SEASONAL]
        result.append((promotions, seasonal))
    return result


def _provenance(
    chosen: list[Candidate],
    rankings: dict[str, Ranking],
    weights: dict[str, float],
    fallback_of: dict[int, str],
    rules: CompiledRules | None,
) -> list[ServedItem]:
    indices = np.array([c.index for c in chosen], dtype=np.int64)
    raw = _raw_scores(rankings, indices)
    ids = _rule_ids(rules, chosen, indices)
    served = []
    for candidate, sources, (promotions, seasonal) in zip(chosen, raw, ids, strict=True):
        origin = fallback_of.get(candidate.index) if not sources else None
        if origin is not None:
            reasons = [FALLBACK_REASONS[origin]]
        else:
            by_weight = sorted(sources, key=lambda name: -weights.get(name, 0.0))
            reasons = [PUBLIC_REASONS[name] for name in by_weight[:MAX_PUBLIC_REASONS]]
        served.append(
            ServedItem(
                index=candidate.index,
                score=round(max(candidate.score, 0.0), 6),
                sources=sources,
                reasons=reasons,
                rule_reasons=list(candidate.reasons),
                promotion_ids=promotions,
                seasonal_boost_ids=seasonal,
                pinned_slot=candidate.pinned_slot,
                buried=candidate.buried,
                fallback=origin,
            )
        )
    return served

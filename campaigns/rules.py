"""The rules engine: promotions and seasonal boosts applied to a request's candidates.

Two steps, so the request path stays cheap:

``rules_compile(state, snapshot, placement_slug, at)`` evaluates which promotions (in the
placement's scope) and seasonal boosts are live at ``at`` in the shop's time zone and
turns their targets into per-product arrays over the snapshot: excluded, allowed (when a
restrict is live), buried, score factor, and a bit per rule for provenance. It is a pure
function of its inputs; ``CompiledRulesCache`` reuses the result for every request of
the same minute, snapshot and state version. ``rules_apply(compiled, candidates, size)``
then costs a few array look-ups plus work proportional to the candidates.

Semantics, in the order they are applied:

1. exclude: a candidate matching any live exclude is removed.
2. restrict: while any restrict is live, only candidates matching at least one live
   restrict target are kept (restricts together define the allowed set).
3. bury: a matching candidate goes below every unburied candidate; buried candidates
   keep their relative order (by their score before rules, then input order). Boosts
   and seasonal boosts are not applied to a buried candidate.
4. boost and seasonal boost: the (normalised, >= 0) score of every other candidate is
   multiplied by each matching boost's factor and each matching seasonal boost's
   multiplier at ``at`` (ramped, see campaigns.schedule); then candidates are sorted by
   the new score (ties: input order).
5. pin: each live pin puts one item at its slot (1-based): the best-ranked candidate
   matching its target, or else the first product of the target in catalog order that
   is active, in stock, not excluded, allowed by the live restricts and not ``blocked``
   by serving (context items, items the strategy filtered out) - so a pin can add an
   item that was not a candidate. An item is pinned at most once.

Conflicts, resolved deterministically:

- Rule order: higher ``priority`` first, then the earlier-created promotion, then the
  lower id. This order decides every conflict below.
- Two pins for one slot: the first in rule order takes the slot; the other takes the
  next free slot after it, and its reason says so; if no slot up to ``size`` is free,
  it is dropped (reported in ``RulesOutcome.notes``).
- Two pins of the same item: the first in rule order places it; the later pin picks
  its next-best matching item, if any.
- A pin of an excluded item (or one outside a live restrict): exclude and restrict win;
  the pin takes another item of its target if there is an eligible one, else it does
  nothing.
- Boost and bury of the same item: bury wins (the boost is not applied).
- Pin and bury (or boost) of the same item: the pin wins; the item sits at its slot.
- A pin whose slot is beyond ``size`` does nothing; when the list is shorter than a
  pin's slot, the pinned item comes right after the last unpinned item.

Every rule that moves, adds or removes an item leaves a reason on it, e.g.
``pinned to slot 1 by promotion "Winter sale" until 24 Dec`` or
``boosted x1.5 by seasonal boost "Gifts" until 24 Dec``; removed candidates and their
reasons are in ``rules_apply_detailed(...).removed`` (for the console preview).
"""

import math
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from campaigns.assignment import UnknownPlacement
from campaigns.candidates import Candidate, ScoredItems
from campaigns.matching import snapshot_index
from campaigns.schedule import schedule_active, schedule_end, seasonal_bounds, seasonal_multiplier, until_label
from campaigns.state import CampaignState
from campaigns.targets import Target
from catalog.snapshot import CatalogSnapshot

PIN, BOOST, BURY, EXCLUDE, RESTRICT, SEASONAL = "pin", "boost", "bury", "exclude", "restrict", "seasonal"
PIN_FALLBACK_SCAN = 256  # target products looked at for a pin when no candidate matches


@dataclass(frozen=True)
class Rule:
    """One live rule, column ``position`` of ``CompiledRules.membership``."""

    kind: str  # pin, boost, bury, exclude, restrict, seasonal
    source_id: int  # Promotion or SeasonalBoost id
    name: str
    factor: float  # boost factor or seasonal multiplier at the compile instant; 1.0 otherwise
    slot: int | None
    reason: str
    until: str  # " until 24 Dec", or empty


@dataclass(frozen=True)
class PinRule:
    position: int  # column in membership
    slot: int
    eligible: np.ndarray  # target products that may be pinned, catalog order


@dataclass(frozen=True, eq=False)
class CompiledRules:
    shop_id: int
    placement_slug: str
    at: datetime
    rules: tuple[Rule, ...]
    excluded: np.ndarray  # bool per product
    allowed: np.ndarray | None  # bool per product; None: no restrict live
    buried: np.ndarray  # bool per product
    factor: np.ndarray  # float64 per product: product of live boost and seasonal factors
    membership: np.ndarray  # uint8 (products, ceil(rules / 8)): bit j = matches rule j's target
    recommendable: np.ndarray  # bool per product (active and in stock)
    pins: tuple[PinRule, ...]  # rule order
    boost_columns: np.ndarray  # uint8 per rule: 1 for boosts and seasonal boosts (reasons of unburied items)
    bury_columns: np.ndarray  # uint8 per rule: 1 for buries (reasons of buried items)
    # product -> positions of the rules that move it (see move_columns), filled as
    # requests serve products: the answer depends on the product only.
    move_memo: dict[int, tuple[int, ...]] = field(default_factory=dict, repr=False)

    @property
    def empty(self) -> bool:
        return not self.rules


@dataclass
class RulesOutcome:
    served: list[Candidate]
    removed: list[Candidate] = field(default_factory=list)  # excluded or restricted away, with reasons
    notes: list[str] = field(default_factory=list)  # pins that could not be placed, and why


def _times(factor: float) -> str:
    return f"x{factor:.2f}".rstrip("0").rstrip(".")


def _promotion_reason(kind: str, name: str, slot: int | None, factor: float | None, until: str) -> str:
    if kind == PIN:
        return f'pinned to slot {slot} by promotion "{name}"{until}'
    if kind == BOOST:
        return f'boosted {_times(factor or 1.0)} by promotion "{name}"{until}'
    if kind == BURY:
        return f'buried by promotion "{name}"{until}'
    if kind == EXCLUDE:
        return f'excluded by promotion "{name}"{until}'
    return f'outside the target of promotion "{name}", which restricts this placement{until}'


def rules_compile(state: CampaignState, snapshot: CatalogSnapshot, placement_slug: str, at: datetime) -> CompiledRules:
    """The rules of ``placement_slug`` live at ``at``, compiled over ``snapshot``.

    Pure: the same (state, snapshot, placement, at) always gives the same result. Raises
    UnknownPlacement. Cost: target matching is memoised per snapshot (campaigns.matching),
    so beyond the first compile on a snapshot this is O(rules + matched products).
    """
    placement = state.placements.get(placement_slug)
    if placement is None:
        raise UnknownPlacement(placement_slug)
    tz = state.tz
    index = snapshot_index(snapshot)
    size = len(snapshot)
    rules: list[Rule] = []
    matches: list[np.ndarray] = []
    for promotion in state.promotions:  # already in rule order
        if not promotion.applies_to(placement.id) or not schedule_active(promotion.schedule, at, tz):
            continue
        until = until_label(schedule_end(promotion.schedule, at, tz), at, tz)
        factor = promotion.factor if promotion.action == BOOST and promotion.factor is not None else 1.0
        reason = _promotion_reason(promotion.action, promotion.name, promotion.slot, factor, until)
        rules.append(Rule(promotion.action, promotion.id, promotion.name, factor, promotion.slot, reason, until))
        matches.append(index.indices(promotion.target, at))
    for boost in state.seasonal_boosts:
        multiplier = seasonal_multiplier(boost.window, boost.factor, boost.ramp_up_days, boost.ramp_down_days, at, tz)
        if math.isclose(multiplier, 1.0):
            continue
        bounds = seasonal_bounds(boost.window, at, tz)
        until = until_label(bounds[1] if bounds else None, at, tz)
        reason = f'boosted {_times(multiplier)} by seasonal boost "{boost.name}"{until}'
        rules.append(Rule(SEASONAL, boost.id, boost.name, multiplier, None, reason, until))
        targets: tuple[Target, ...] = (Target(categories=boost.categories),) if boost.categories else ()
        targets += (Target(tags=boost.tags),) if boost.tags else ()
        matches.append(index.indices_any(targets, at))  # categories OR tags

    excluded = np.zeros(size, dtype=bool)
    buried = np.zeros(size, dtype=bool)
    allowed: np.ndarray | None = None
    factor_per_product = np.ones(size, dtype=np.float64)
    membership = np.zeros((size, (len(rules) + 7) // 8), dtype=np.uint8)
    for position, (rule, matched) in enumerate(zip(rules, matches, strict=True)):
        membership[matched, position >> 3] |= np.uint8(128 >> (position & 7))
        if rule.kind == EXCLUDE:
            excluded[matched] = True
        elif rule.kind == RESTRICT:
            if allowed is None:
                allowed = np.zeros(size, dtype=bool)
            allowed[matched] = True
        elif rule.kind == BURY:
            buried[matched] = True
        elif rule.kind in (BOOST, SEASONAL):
            factor_per_product[matched] *= rule.factor  # indices are unique, so this is exact
    recommendable = snapshot.recommendable
    pins = []
    for position, (rule, matched) in enumerate(zip(rules, matches, strict=True)):
        if rule.kind != PIN or rule.slot is None:
            continue
        ok = recommendable[matched] & ~excluded[matched]
        if allowed is not None:
            ok &= allowed[matched]
        pins.append(PinRule(position=position, slot=rule.slot, eligible=matched[ok]))
    return CompiledRules(
        shop_id=state.shop_id,
        placement_slug=placement_slug,
        at=at,
        rules=tuple(rules),
        excluded=excluded,
        allowed=allowed,
        buried=buried,
        factor=factor_per_product,
        membership=membership,
        recommendable=recommendable,
        pins=tuple(pins),
        boost_columns=np.array([r.kind in (BOOST, SEASONAL) for r in rules], dtype=np.uint8),
        bury_columns=np.array([r.kind == BURY for r in rules], dtype=np.uint8),
    )


def _bits(compiled: CompiledRules, items: np.ndarray) -> np.ndarray:
    """(items, rules) 0/1 matrix: which rules' targets each item matches."""
    return np.unpackbits(compiled.membership[items], axis=1, count=len(compiled.rules))


def rules_apply(
    compiled: CompiledRules,
    candidates: Sequence[Candidate],
    size: int,
    *,
    pool: int | None = None,
    blocked: Collection[int] = (),
) -> list[Candidate]:
    """The candidates after the rules, best first (see the module doc): the ``size``
    slots of the list served, pins in them, then more of the ranking up to ``pool``
    items (default ``size``) for the steps after the rules (diversity) to choose from.

    ``candidates``: distinct snapshot indices with normalised scores (>= 0), already
    filtered by serving (which passes them as ScoredItems: two arrays). ``blocked``:
    snapshot indices a pin must not add (context items, items the strategy filtered
    out). A pin to a slot beyond ``size`` does nothing. Returns new Candidate objects;
    the inputs are not changed. Cost: a few array look-ups over the candidates, plus
    Python work for the ``pool`` items returned only.
    """
    return _apply(compiled, candidates, size, pool, blocked, explain=False).served


def rules_apply_detailed(
    compiled: CompiledRules,
    candidates: Sequence[Candidate],
    size: int,
    *,
    pool: int | None = None,
    blocked: Collection[int] = (),
) -> RulesOutcome:
    """``rules_apply`` plus the removed candidates with their reasons (for previews)."""
    return _apply(compiled, candidates, size, pool, blocked, explain=True)


def _apply(
    compiled: CompiledRules,
    candidates: Sequence[Candidate],
    size: int,
    pool: int | None,
    blocked: Collection[int],
    explain: bool,
) -> RulesOutcome:
    pool = max(pool or size, size)
    if isinstance(candidates, ScoredItems):
        items, scores = candidates.items, candidates.scores
    else:
        items = np.array([c.index for c in candidates], dtype=np.intp)
        scores = np.array([c.score for c in candidates], dtype=np.float64)
    dropped = compiled.excluded[items]
    if compiled.allowed is not None:
        dropped |= ~compiled.allowed[items]
    buried = compiled.buried[items]
    adjusted = np.where(buried, scores, scores * compiled.factor[items])
    order = np.lexsort((np.arange(len(items)), -adjusted, buried))  # unburied first, score desc, input order
    ranked = order[~dropped[order]]
    placed, notes = _place_pins(compiled, items, ranked, size, blocked) if compiled.pins else ({}, [])
    outcome = RulesOutcome(served=[], notes=notes)

    # Fill the slots: pins where they are, the ranked candidates around them.
    pinned_items = {item for item, _, _ in placed.values()}
    rest = (int(p) for p in ranked if int(items[p]) not in pinned_items)
    layout: list[tuple[int | None, int]] = []  # (slot of a pin or None, candidate position or pinned item)
    while len(layout) < pool:
        slot = len(layout) + 1
        if slot in placed:
            layout.append((slot, placed[slot][0]))
            continue
        next_position = next(rest, None)
        if next_position is None:
            break
        layout.append((None, next_position))
    used = {pin_slot for pin_slot, _ in layout if pin_slot is not None}
    for slot in sorted(placed):  # a list shorter than a pin's slot: the pin comes last
        if slot not in used and len(layout) < pool:
            layout.append((slot, placed[slot][0]))

    positions = np.array([value for pin_slot, value in layout if pin_slot is None], dtype=np.intp)
    # Candidate position of each pinned item that is a candidate too.
    position_of = {item: position for position, item in enumerate(items.tolist())} if placed else {}
    reasons = iter(_move_reasons(compiled, items[positions]))
    for pin_slot, value in layout:
        if pin_slot is None:
            candidate = candidates[value]
            is_buried = bool(buried[value])
            extra = next(reasons)
            outcome.served.append(
                Candidate(
                    index=candidate.index,
                    score=float(adjusted[value]),
                    sources=candidate.sources,
                    reasons=[*candidate.reasons, *extra],
                    buried=is_buried,
                )
            )
        else:
            position = position_of.get(value)
            source = candidates[position] if position is not None else None
            outcome.served.append(
                Candidate(
                    index=value,
                    score=float(adjusted[position]) if position is not None else 0.0,
                    sources=source.sources if source is not None else {},
                    reasons=[*(source.reasons if source is not None else ()), placed[pin_slot][2]],
                    pinned_slot=pin_slot,
                    pinned_by=placed[pin_slot][1],
                )
            )
    if explain:
        outcome.removed = _removed(compiled, candidates, items, np.flatnonzero(dropped))
    return outcome


def move_columns(compiled: CompiledRules, items: np.ndarray) -> list[tuple[int, ...]]:
    """Per item (snapshot index), the positions of the rules that move it: its buries if
    a bury holds it down, else its boosts and seasonal boosts. Pins are not included
    (which pin placed an item is the rules engine's decision, not the item's).

    Products not seen before under these rules are looked up in one matrix operation
    and remembered in ``compiled.move_memo``; popular products are then dictionary
    look-ups."""
    memo = compiled.move_memo
    wanted = items.tolist()
    missing = [item for item in dict.fromkeys(wanted) if item not in memo]
    if missing:
        found: dict[int, list[int]] = {item: [] for item in missing}
        if compiled.rules:
            rows = np.array(missing, dtype=np.intp)
            columns = np.where(
                compiled.buried[rows][:, None], compiled.bury_columns[None, :], compiled.boost_columns[None, :]
            )
            matched_rows, matched_columns = np.nonzero(_bits(compiled, rows) & columns)
            for row, column in zip(matched_rows.tolist(), matched_columns.tolist(), strict=True):
                found[missing[row]].append(column)
        for item, positions in found.items():
            memo[item] = tuple(positions)
    return [memo[item] for item in wanted]


def _move_reasons(compiled: CompiledRules, items: np.ndarray) -> list[list[str]]:
    """Per item, the reasons of the rules that moved it (see move_columns)."""
    rules = compiled.rules
    return [[rules[column].reason for column in columns] for columns in move_columns(compiled, items)]


def _removed(
    compiled: CompiledRules, candidates: Sequence[Candidate], items: np.ndarray, positions: np.ndarray
) -> list[Candidate]:
    """The dropped candidates, each with the excludes that removed it, or else the
    restricts whose targets it is outside of."""
    restricts = [r.reason for r in compiled.rules if r.kind == RESTRICT]
    exclude_columns = np.array([r.kind == EXCLUDE for r in compiled.rules], dtype=bool)
    removed = []
    for position, row in zip(positions, _bits(compiled, items[positions]), strict=True):
        candidate = candidates[position]
        reasons = [compiled.rules[j].reason for j in np.flatnonzero(row & exclude_columns)] or restricts
        removed.append(Candidate(candidate.index, candidate.score, candidate.sources, [*candidate.reasons, *reasons]))
    return removed


def _place_pins(
    compiled: CompiledRules, items: np.ndarray, ranked: np.ndarray, size: int, blocked: Collection[int]
) -> tuple[dict[int, tuple[int, int, str]], list[str]]:
    """slot -> (item, rule position, reason) for the live pins, in rule order; and notes."""
    placed: dict[int, tuple[int, int, str]] = {}
    taken: set[int] = set()
    notes: list[str] = []
    ranked_items = items[ranked]
    pinnable = _bits(compiled, ranked_items).astype(bool) & compiled.recommendable[ranked_items][:, None]
    for pin in compiled.pins:
        rule = compiled.rules[pin.position]
        if pin.slot > size:
            notes.append(f'promotion "{rule.name}" pins to slot {pin.slot}, beyond the {size} items served')
            continue
        matching = ranked_items[pinnable[:, pin.position]]
        item = next((int(i) for i in matching if int(i) not in taken), None)
        if item is None:
            item = next(
                (int(i) for i in pin.eligible[:PIN_FALLBACK_SCAN] if int(i) not in taken and int(i) not in blocked),
                None,
            )
        if item is None:
            notes.append(
                f'promotion "{rule.name}" has no eligible item to pin (excluded, unavailable or already shown)'
            )
            continue
        slot = pin.slot
        while slot in placed:
            slot += 1
        if slot > size:
            notes.append(f'promotion "{rule.name}" lost slot {pin.slot} and found no free slot up to {size}')
            continue
        reason = rule.reason
        if slot != pin.slot:
            holder = compiled.rules[placed[pin.slot][1]].name
            reason = _promotion_reason(PIN, rule.name, slot, None, rule.until)
            reason += f' (slot {pin.slot} went to promotion "{holder}")'
        placed[slot] = (item, pin.position, reason)
        taken.add(item)
    return placed, notes


class CompiledRulesCache:
    """Compiled rules per (shop, placement), reused while the minute, the snapshot and the
    campaign state are the same. Schedules have minute resolution, so compiling at the
    start of the minute is exact for every request in it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, str], tuple[tuple[object, ...], CompiledRules]] = {}

    def get(self, state: CampaignState, snapshot: CatalogSnapshot, placement_slug: str, at: datetime) -> CompiledRules:
        minute = int(at.timestamp() // 60)
        key = (state.version, state.timezone, snapshot.version, len(snapshot), minute)
        entry = self._entries.get((state.shop_id, placement_slug))
        if entry is not None and entry[0] == key:
            return entry[1]
        compiled = rules_compile(state, snapshot, placement_slug, datetime.fromtimestamp(minute * 60, tz=UTC))
        with self._lock:
            self._entries[(state.shop_id, placement_slug)] = (key, compiled)
        return compiled


_process_cache = CompiledRulesCache()


def compiled_rules(state: CampaignState, snapshot: CatalogSnapshot, placement_slug: str, at: datetime) -> CompiledRules:
    """The process-wide cached ``rules_compile`` (what serving calls per request)."""
    return _process_cache.get(state, snapshot, placement_slug, at)

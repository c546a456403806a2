"""The rules engine: pins, bury, exclude, restrict, boosts, seasonal boosts, conflicts,
provenance, time travel. Rules are created and published through the services and read
back with state_load, as serving does."""

from datetime import UTC, datetime, time, timedelta

import numpy as np
import pytest

from campaigns import services
from campaigns.candidates import Candidate, ScoredItems
from campaigns.matching import SnapshotIndex
from campaigns.rules import CompiledRulesCache, move_columns, rules_apply, rules_apply_detailed, rules_compile
from campaigns.targets import Target
from tests.campaigns.conftest import ACTOR, NOW, candidates, load, publish, skus

UNTIL_XMAS = datetime(2026, 12, 24, 23, tzinfo=UTC)  # 25 Dec 00:00 in Berlin
NO_RULES_ORDER = ["SKU-1", "SKU-2", "SKU-3", "SKU-4", "SKU-5", "SKU-8"]


def serve(shop, snapshot, placement="home", at=NOW, size=6, **kwargs):
    compiled = rules_compile(load(shop), snapshot, placement, at)
    return rules_apply_detailed(compiled, candidates(snapshot), size, **kwargs)


def test_without_rules_candidates_pass_through_in_score_order(shop, snapshot, placements):
    outcome = serve(shop, snapshot, size=4)
    assert skus(snapshot, outcome.served) == ["SKU-1", "SKU-2", "SKU-3", "SKU-4"]
    assert [c.reasons for c in outcome.served] == [["personal"]] * 4
    assert [c.score for c in outcome.served] == [0.9, 0.8, 0.7, 0.6]
    assert outcome.removed == []


def test_pin_holds_its_slot_and_says_so(shop, snapshot, placements):
    # Given SKU-5 (ranked 5th) pinned to slot 2 until Christmas Eve
    publish(shop, name="Winter sale", target={"skus": ["SKU-5"]}, action="pin", slot=2, ends_at=UNTIL_XMAS)
    # When the rules are applied
    served = serve(shop, snapshot).served
    # Then SKU-5 is second and the rest keep their order around it
    assert skus(snapshot, served) == ["SKU-1", "SKU-5", "SKU-2", "SKU-3", "SKU-4", "SKU-8"]
    assert served[1].pinned_slot == 2
    assert served[1].reasons == ["personal", 'pinned to slot 2 by promotion "Winter sale" until 24 Dec']
    assert served[0].reasons == ["personal"]


def test_pin_adds_an_item_that_was_not_a_candidate(shop, snapshot, placements):
    publish(shop, name="Hero", target={"skus": ["SKU-9"]}, action="pin", slot=1)
    served = serve(shop, snapshot, size=3).served
    assert skus(snapshot, served) == ["SKU-9", "SKU-1", "SKU-2"]
    assert (served[0].score, served[0].sources, served[0].reasons) == (
        0.0,
        {},
        ['pinned to slot 1 by promotion "Hero"'],
    )


def test_pin_of_a_category_takes_its_best_ranked_candidate(shop, snapshot, placements):
    publish(shop, name="Garden first", target={"categories": ["Garden"]}, action="pin", slot=1)
    assert skus(snapshot, serve(shop, snapshot, size=3).served) == ["SKU-4", "SKU-1", "SKU-2"]


def test_out_of_stock_and_inactive_items_are_never_pinned(shop, snapshot, placements):
    publish(shop, name="Sold out", target={"skus": ["SKU-6"]}, action="pin", slot=1)
    publish(shop, name="Gone", target={"skus": ["SKU-7"]}, action="pin", slot=2)
    outcome = serve(shop, snapshot, size=3)
    assert skus(snapshot, outcome.served) == ["SKU-1", "SKU-2", "SKU-3"]
    assert outcome.notes == [
        'promotion "Sold out" has no eligible item to pin (excluded, unavailable or already shown)',
        'promotion "Gone" has no eligible item to pin (excluded, unavailable or already shown)',
    ]


def test_pin_never_adds_a_blocked_item(shop, snapshot, placements):
    publish(shop, name="Hero", target={"skus": ["SKU-9"]}, action="pin", slot=1)
    served = serve(shop, snapshot, size=2, blocked={snapshot.index_by_sku["SKU-9"]}).served
    assert skus(snapshot, served) == ["SKU-1", "SKU-2"]


def test_pin_beyond_a_short_list_comes_last(shop, snapshot, placements):
    publish(shop, name="Deep", target={"skus": ["SKU-9"]}, action="pin", slot=10)
    served = serve(shop, snapshot, size=12).served
    assert skus(snapshot, served) == [*NO_RULES_ORDER, "SKU-9"]
    assert served[-1].pinned_slot == 10


def test_pin_beyond_the_size_served_does_nothing(shop, snapshot, placements):
    publish(shop, name="Deep", target={"skus": ["SKU-9"]}, action="pin", slot=5)
    outcome = serve(shop, snapshot, size=4)
    assert skus(snapshot, outcome.served) == ["SKU-1", "SKU-2", "SKU-3", "SKU-4"]
    assert outcome.notes == ['promotion "Deep" pins to slot 5, beyond the 4 items served']


def test_bury_pushes_below_every_unburied_candidate_keeping_relative_order(shop, snapshot, placements):
    # Given the two best candidates (brand Acme) buried
    publish(shop, name="Acme down", target={"brands": ["ACME"]}, action="bury")
    served = serve(shop, snapshot).served
    # Then they come after all others, in their original order
    assert skus(snapshot, served) == ["SKU-3", "SKU-4", "SKU-5", "SKU-8", "SKU-1", "SKU-2"]
    assert [c.buried for c in served] == [False] * 4 + [True] * 2
    assert served[4].reasons == ["personal", 'buried by promotion "Acme down"']
    # And with room for only four, buried candidates are not served at all
    assert skus(snapshot, serve(shop, snapshot, size=4).served) == ["SKU-3", "SKU-4", "SKU-5", "SKU-8"]


def test_exclude_removes_the_target_with_descendant_categories(shop, snapshot, placements):
    publish(shop, name="No toys", target={"categories": ["Toys"]}, action="exclude", ends_at=UNTIL_XMAS)
    outcome = serve(shop, snapshot)
    assert skus(snapshot, outcome.served) == ["SKU-4", "SKU-5", "SKU-8"]
    assert skus(snapshot, outcome.removed) == ["SKU-1", "SKU-2", "SKU-3"]
    assert outcome.removed[0].reasons == ["personal", 'excluded by promotion "No toys" until 24 Dec']
    compiled = rules_compile(load(shop), snapshot, "home", NOW)
    assert rules_apply(compiled, candidates(snapshot), 6) == outcome.served


def test_restrict_keeps_only_the_target(shop, snapshot, placements):
    publish(shop, name="Gifts only", target={"tags": ["gift"]}, action="restrict")
    outcome = serve(shop, snapshot)
    assert skus(snapshot, outcome.served) == ["SKU-1", "SKU-3"]  # tags match case-insensitively
    assert outcome.removed[0].reasons == [
        "personal",
        'outside the target of promotion "Gifts only", which restricts this placement',
    ]


def test_two_restricts_allow_the_union_of_their_targets(shop, snapshot, placements):
    publish(shop, name="Gifts only", target={"tags": ["gift"]}, action="restrict")
    publish(shop, name="Garden only", target={"categories": ["Garden"]}, action="restrict")
    assert skus(snapshot, serve(shop, snapshot).served) == ["SKU-1", "SKU-3", "SKU-4", "SKU-5"]


def test_boost_multiplies_the_score_and_reorders(shop, snapshot, placements):
    publish(shop, name="Garden", target={"categories": ["Garden"]}, action="boost", factor=2.0)
    served = serve(shop, snapshot).served
    assert skus(snapshot, served) == ["SKU-4", "SKU-5", "SKU-1", "SKU-2", "SKU-3", "SKU-8"]
    assert [round(c.score, 6) for c in served] == [1.2, 1.0, 0.9, 0.8, 0.7, 0.4]
    assert served[0].reasons == ["personal", 'boosted x2 by promotion "Garden"']


def test_boosts_on_the_same_item_multiply(shop, snapshot, placements):
    publish(shop, name="Red", target={"attributes": {"color": ["red"]}}, action="boost", factor=1.5)
    publish(shop, name="Cheap", target={"price_max": 50}, action="boost", factor=1.25)
    served = serve(shop, snapshot).served
    by_sku = {snapshot.skus[c.index]: c for c in served}
    assert by_sku["SKU-5"].score == pytest.approx(0.5 * 1.5 * 1.25)
    assert by_sku["SKU-8"].score == pytest.approx(0.4)  # price 80
    assert by_sku["SKU-5"].reasons == [
        "personal",
        'boosted x1.5 by promotion "Red"',
        'boosted x1.25 by promotion "Cheap"',
    ]


def test_seasonal_boost_multiplies_with_its_ramp(shop, snapshot, placements):
    # Given "Gifts" x3 from 20 Nov to 24 Dec with a 20-day ramp up; on 2 Dec 13:00 local
    # 12.5 of 20 days have passed
    services.seasonal_boost_create(
        shop=shop,
        actor=ACTOR,
        fields={
            "name": "Gifts",
            "tags": ["gift"],
            "factor": 3.0,
            "recurrence": "yearly",
            "yearly_from": "11-20",
            "yearly_until": "12-24",
            "ramp_up_days": 20,
        },
    )
    served = serve(shop, snapshot).served
    multiplier = 1 + 2 * (12 * 24 + 13) / (20 * 24)
    by_sku = {snapshot.skus[c.index]: c for c in served}
    assert by_sku["SKU-3"].score == pytest.approx(0.7 * multiplier)
    assert by_sku["SKU-3"].reasons == ["personal", 'boosted x2.25 by seasonal boost "Gifts" until 24 Dec']
    assert skus(snapshot, served)[:2] == ["SKU-1", "SKU-3"]
    # And outside the window it does nothing
    assert serve(shop, snapshot, at=datetime(2026, 12, 26, tzinfo=UTC)).served[0].reasons == ["personal"]


# --- conflicts (documented in campaigns/rules.py) --------------------------------------------


def test_two_pins_for_one_slot_higher_priority_wins_and_the_other_moves_down(shop, snapshot, placements):
    publish(shop, name="Low", target={"skus": ["SKU-8"]}, action="pin", slot=1, priority=1)
    publish(shop, name="High", target={"skus": ["SKU-9"]}, action="pin", slot=1, priority=5)
    served = serve(shop, snapshot, size=4).served
    assert skus(snapshot, served) == ["SKU-9", "SKU-8", "SKU-1", "SKU-2"]
    assert served[1].reasons[-1] == 'pinned to slot 2 by promotion "Low" (slot 1 went to promotion "High")'
    assert served[1].pinned_slot == 2


def test_two_pins_for_one_slot_with_equal_priority_the_older_wins(shop, snapshot, placements):
    publish(shop, name="First", target={"skus": ["SKU-8"]}, action="pin", slot=1)
    publish(shop, name="Second", target={"skus": ["SKU-9"]}, action="pin", slot=1)
    assert skus(snapshot, serve(shop, snapshot, size=3).served) == ["SKU-8", "SKU-9", "SKU-1"]


def test_losing_pin_with_no_free_slot_left_is_dropped(shop, snapshot, placements):
    publish(shop, name="First", target={"skus": ["SKU-8"]}, action="pin", slot=2)
    publish(shop, name="Second", target={"skus": ["SKU-9"]}, action="pin", slot=2)
    outcome = serve(shop, snapshot, size=2)
    assert skus(snapshot, outcome.served) == ["SKU-1", "SKU-8"]
    assert outcome.notes == ['promotion "Second" lost slot 2 and found no free slot up to 2']


def test_pin_of_an_excluded_item_exclude_wins(shop, snapshot, placements):
    publish(shop, name="Pin it", target={"skus": ["SKU-5"]}, action="pin", slot=1, priority=100)
    publish(shop, name="Hide it", target={"skus": ["SKU-5"]}, action="exclude", priority=0)
    outcome = serve(shop, snapshot)
    assert skus(snapshot, outcome.served) == ["SKU-1", "SKU-2", "SKU-3", "SKU-4", "SKU-8"]
    assert skus(snapshot, outcome.removed) == ["SKU-5"]
    assert outcome.notes == ['promotion "Pin it" has no eligible item to pin (excluded, unavailable or already shown)']


def test_pin_outside_a_restrict_restrict_wins(shop, snapshot, placements):
    publish(shop, name="Pin garden", target={"skus": ["SKU-4"]}, action="pin", slot=1)
    publish(shop, name="Gifts only", target={"tags": ["gift"]}, action="restrict")
    assert skus(snapshot, serve(shop, snapshot).served) == ["SKU-1", "SKU-3"]


def test_boost_and_bury_of_the_same_item_bury_wins(shop, snapshot, placements):
    publish(shop, name="Up", target={"skus": ["SKU-1"]}, action="boost", factor=100.0, priority=10)
    publish(shop, name="Down", target={"skus": ["SKU-1"]}, action="bury", priority=0)
    served = serve(shop, snapshot).served
    assert skus(snapshot, served)[-1] == "SKU-1"
    assert served[-1].score == 0.9  # the boost is not applied
    assert served[-1].reasons == ["personal", 'buried by promotion "Down"']


def test_move_columns_are_the_buries_of_a_buried_item_else_its_boosts(shop, snapshot, placements):
    publish(shop, name="Up", target={"skus": ["SKU-1", "SKU-2", "SKU-4"]}, action="boost", factor=2.0)
    publish(shop, name="Garden", target={"categories": ["Garden"]}, action="boost", factor=1.5)
    publish(shop, name="Down", target={"skus": ["SKU-2", "SKU-3"]}, action="bury")
    publish(shop, name="Pin", target={"skus": ["SKU-1"]}, action="pin", slot=1)
    compiled = rules_compile(load(shop), snapshot, "home", NOW)
    items = np.arange(len(snapshot.skus))
    expected = []
    for item in items.tolist():
        matched = np.flatnonzero(np.unpackbits(compiled.membership[item], count=len(compiled.rules))).tolist()
        kinds = {"bury"} if compiled.buried[item] else {"boost", "seasonal"}
        expected.append(tuple(j for j in matched if compiled.rules[j].kind in kinds))
    assert sorted(map(len, expected))[-1] == 2  # SKU-4 (Garden): both boosts; SKU-1: Up, not its pin
    assert move_columns(compiled, items) == expected
    assert move_columns(compiled, items[::-1]) == expected[::-1]  # answered from the memo


def test_scored_items_are_ranked_as_the_same_candidates_in_a_list(shop, snapshot, placements):
    publish(shop, name="Up", target={"skus": ["SKU-4"]}, action="boost", factor=3.0)
    publish(shop, name="Down", target={"skus": ["SKU-1"]}, action="bury")
    publish(shop, name="Gone", target={"skus": ["SKU-2"]}, action="exclude")
    publish(shop, name="Pin", target={"skus": ["SKU-8"]}, action="pin", slot=2)
    compiled = rules_compile(load(shop), snapshot, "home", NOW)
    items, scores = np.array([0, 1, 2, 3, 4]), np.array([0.9, 0.8, 0.7, 0.6, 0.5], dtype=np.float32)
    listed = [Candidate(index=i, score=s) for i, s in zip(items.tolist(), scores.tolist(), strict=True)]
    for size in (1, 3, 6):
        assert rules_apply(compiled, ScoredItems(items, scores), size) == rules_apply(compiled, listed, size)
    detailed = rules_apply_detailed(compiled, ScoredItems(items, scores), 6)
    assert detailed == rules_apply_detailed(compiled, listed, 6)
    assert [c.pinned_slot for c in detailed.served].count(2) == 1 and detailed.removed


def test_pin_and_bury_of_the_same_item_pin_wins(shop, snapshot, placements):
    publish(shop, name="Down", target={"skus": ["SKU-5"]}, action="bury")
    publish(shop, name="Pin", target={"skus": ["SKU-5"]}, action="pin", slot=1)
    served = serve(shop, snapshot, size=3).served
    assert skus(snapshot, served) == ["SKU-5", "SKU-1", "SKU-2"]
    assert (served[0].pinned_slot, served[0].buried) == (1, False)


def test_two_pins_of_the_same_item_the_later_takes_its_next_match(shop, snapshot, placements):
    publish(shop, name="A", target={"skus": ["SKU-4"]}, action="pin", slot=1, priority=2)
    publish(shop, name="Garden", target={"categories": ["Garden"]}, action="pin", slot=2, priority=1)
    assert skus(snapshot, serve(shop, snapshot, size=3).served) == ["SKU-4", "SKU-5", "SKU-1"]


# --- scope, lifecycle, time -----------------------------------------------------------------------------


def test_scope_limits_a_promotion_to_its_placements(shop, snapshot, placements):
    publish(shop, name="Cart only", target={"skus": ["SKU-1"]}, action="exclude", placements=[placements["cart"]])
    assert "SKU-1" not in skus(snapshot, serve(shop, snapshot, placement="cart").served)
    assert "SKU-1" in skus(snapshot, serve(shop, snapshot, placement="home").served)


def test_draft_and_paused_promotions_do_nothing(shop, snapshot, placements):
    services.promotion_create(
        shop=shop, actor=ACTOR, fields={"name": "Draft", "target": {"skus": ["SKU-1"]}, "action": "exclude"}
    )
    paused = publish(shop, name="Paused", target={"skus": ["SKU-2"]}, action="exclude")
    services.promotion_pause(promotion=paused, actor=ACTOR)
    assert skus(snapshot, serve(shop, snapshot).served) == NO_RULES_ORDER


def test_time_travel_same_state_two_instants_two_answers(shop, snapshot, placements):
    # Given a Black Friday pin, 27 Nov 2026 09:00-24:00 in Berlin, published now
    publish(
        shop,
        name="Black Friday",
        target={"skus": ["SKU-9"]},
        action="pin",
        slot=1,
        starts_at=datetime(2026, 11, 27, 8, tzinfo=UTC),
        ends_at=datetime(2026, 11, 27, 23, tzinfo=UTC),
    )
    state = load(shop)
    # When the same state is evaluated as of Black Friday 08:59 and 09:00 local
    before = rules_apply(
        rules_compile(state, snapshot, "home", datetime(2026, 11, 27, 7, 59, tzinfo=UTC)), candidates(snapshot), 2
    )
    during = rules_apply(
        rules_compile(state, snapshot, "home", datetime(2026, 11, 27, 8, 0, tzinfo=UTC)), candidates(snapshot), 2
    )
    # Then only the later one has the pin
    assert skus(snapshot, before) == ["SKU-1", "SKU-2"]
    assert skus(snapshot, during) == ["SKU-9", "SKU-1"]
    assert during[0].reasons == ['pinned to slot 1 by promotion "Black Friday" until 27 Nov']


def test_daily_hours_promotion_switches_at_local_nine_across_the_spring_change(shop, snapshot, placements):
    publish(
        shop,
        name="Office hours",
        target={"skus": ["SKU-8"]},
        action="pin",
        slot=1,
        daily_from=time(9),
        daily_until=time(17),
    )
    state = load(shop)

    def first(at: datetime) -> str:
        return skus(snapshot, rules_apply(rules_compile(state, snapshot, "home", at), candidates(snapshot), 1))[0]

    # Saturday 28 March (CET): 09:00 local is 08:00 UTC; Monday 30 March (CEST): 07:00 UTC
    assert [first(datetime(2026, 3, 28, 7, 59, tzinfo=UTC)), first(datetime(2026, 3, 28, 8, 0, tzinfo=UTC))] == [
        "SKU-1",
        "SKU-8",
    ]
    assert [first(datetime(2026, 3, 30, 6, 59, tzinfo=UTC)), first(datetime(2026, 3, 30, 7, 0, tzinfo=UTC))] == [
        "SKU-1",
        "SKU-8",
    ]


def test_new_arrivals_target_depends_on_the_instant(shop, snapshot):
    index = SnapshotIndex(snapshot)
    created = datetime.fromtimestamp(float(snapshot.created_ts.max()), tz=UTC)
    target = Target(new_within_days=7)
    assert len(index.indices(target, created + timedelta(days=6))) == 9
    assert len(index.indices(target, created + timedelta(days=8))) == 0


def test_target_criteria_and_across_kinds_or_within(shop, snapshot):
    index = SnapshotIndex(snapshot)

    def matched(**criteria) -> list[str]:
        return [snapshot.skus[i] for i in index.indices(Target.from_dict(criteria), NOW)]

    assert matched(brands=["cobra"]) == ["SKU-5", "SKU-6"]
    assert matched(brands=["Cobra", "Acme"], categories=["Garden"]) == ["SKU-5"]
    assert matched(attributes={"color": ["RED"]}) == ["SKU-4", "SKU-5"]
    assert matched(attributes={"color": ["red"], "size": [42]}) == ["SKU-5"]
    assert matched(price_min=30, price_max=50) == ["SKU-3", "SKU-4", "SKU-5"]
    assert matched(categories=["Toys"], tags=["new"]) == ["SKU-3"]
    assert matched(skus=["SKU-2", "NOPE"]) == ["SKU-2"]
    assert matched(categories=["Nowhere"]) == []


def test_compiled_rules_are_cached_per_minute_and_state_version(shop, snapshot, placements):
    cache = CompiledRulesCache()
    state = load(shop)
    first = cache.get(state, snapshot, "home", NOW)
    assert cache.get(state, snapshot, "home", NOW + timedelta(seconds=59)) is first
    assert first.at == NOW  # compiled at the start of the minute
    assert cache.get(state, snapshot, "home", NOW + timedelta(seconds=60)) is not first
    publish(shop, name="Hide", target={"skus": ["SKU-1"]}, action="exclude")
    newer = load(shop)
    assert newer.version > state.version
    compiled = cache.get(newer, snapshot, "home", NOW + timedelta(seconds=60))
    assert compiled.excluded[snapshot.index_by_sku["SKU-1"]]
    assert np.count_nonzero(compiled.excluded) == 1

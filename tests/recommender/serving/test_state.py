"""The serving state: what a refresh picks up, what it keeps, and the list cache it owns."""

import gc
import time
import weakref
from datetime import UTC, datetime

import pytest

from catalog.services import product_deactivate
from recommender.artifacts import artifact_absolute_path
from recommender.models import ActiveModel, ModelVersion
from recommender.registry import MODEL_DIR, model_rollback, model_version_activate
from recommender.serving import state as state_module
from recommender.serving.state import registry
from tests.factories import ShopFactory
from tests.recommender.serving.fixtures import SYSTEM, placement, serve, skus, train
from tests.recommender.shop_data import build_shop_history


@pytest.fixture
def shop(db):
    shop = ShopFactory()
    build_shop_history(shop)
    train(shop, ["trending"])
    placement(shop, "home", {"sources": {"trending": 1.0}, "size": 5})
    placement(shop, "for-you", {"sources": {"trending": 1.0, "personal": 1.0}, "size": 5})
    return shop


def test_a_refresh_with_nothing_changed_keeps_the_same_state(shop):
    state = registry.state(shop.pk)

    assert registry.refresh(shop.pk) is False
    assert registry.state(shop.pk) is state


def test_states_are_kept_out_of_the_collectors_walks(shop):
    # Full collections walked every object of a state (one dict per product's
    # attributes): a pause of hundreds of milliseconds inside a request on a large shop.
    state = registry.state(shop.pk)
    tracked = {id(o) for o in gc.get_objects()}
    assert id(state.snapshot.attributes) not in tracked
    assert id(state.snapshot.index_by_sku) not in tracked

    product_deactivate(shop=shop, sku=state.snapshot.skus[0])
    assert registry.refresh(shop.pk)
    assert id(registry.state(shop.pk).snapshot.attributes) not in {id(o) for o in gc.get_objects()}
    # A replaced state is freed at once by reference counting, frozen or not: nothing
    # but a reference cycle could keep it, and the collector no longer looks at it.
    replaced = weakref.ref(state)
    del state
    assert replaced() is None


class _Cyclic:
    def __init__(self) -> None:
        self.me = self


def test_frozen_cycles_are_collected_when_a_model_is_replaced(shop, monkeypatch):
    # Loaded models sit in reference cycles; frozen, they would never be collected, and
    # every activation would keep the replaced model in memory.
    monkeypatch.setattr(state_module, "_last_full_collection", time.monotonic())
    garbage = _Cyclic()
    kept = weakref.ref(garbage)
    state_module._freeze_long_lived(models_replaced=False)
    del garbage
    gc.collect()
    assert kept() is not None  # frozen: out of the collector's reach

    state_module._freeze_long_lived(models_replaced=True)
    assert kept() is None

    flags: list[bool] = []
    monkeypatch.setattr(state_module, "_freeze_long_lived", lambda *, models_replaced: flags.append(models_replaced))
    registry.state(shop.pk)
    product_deactivate(shop=shop, sku=registry.state(shop.pk).snapshot.skus[0])
    assert registry.refresh(shop.pk)
    (second,) = train(shop, ["trending"], {"half_life_days": 0.01})
    model_version_activate(version=second, actor=SYSTEM)
    assert registry.refresh(shop.pk)
    assert flags[-2:] == [False, True]  # a catalog change only freezes; a new model collects


def test_non_personal_lists_are_cached_until_the_catalog_changes(shop):
    first = serve(shop, "home")
    cache = registry.state(shop.pk).cache
    second = serve(shop, "home", shopper_id="someone")  # no source reads history: the same list

    assert (cache.hits, cache.misses) == (1, 1)
    assert second.result is first.result
    assert second.request_id != first.request_id

    product_deactivate(shop=shop, sku=skus(first)[0])
    assert registry.refresh(shop.pk)

    third = serve(shop, "home")
    assert registry.state(shop.pk).cache is not cache
    assert skus(third) == [*skus(first)[1:], skus(third)[-1]]


def test_personal_lists_are_never_cached(shop):
    serve(shop, "for-you", shopper_id="someone")
    serve(shop, "for-you", shopper_id="someone")

    cache = registry.state(shop.pk).cache
    assert (cache.hits, cache.misses, len(cache)) == (0, 0, 0)


def test_a_new_version_and_a_rollback_are_picked_up_by_a_refresh(shop):
    (first,) = ActiveModel.objects.filter(shop=shop).values_list("version_id", flat=True)
    before = serve(shop, "home")
    cache = registry.state(shop.pk).cache
    assert before.model_versions == {"trending": first}

    (second,) = train(shop, ["trending"], {"half_life_days": 0.01})
    model_version_activate(version=second, actor=SYSTEM)
    assert registry.refresh(shop.pk)
    assert serve(shop, "home").model_versions == {"trending": second.pk}
    assert registry.state(shop.pk).cache is not cache  # a new state, a new (empty) cache

    model_rollback(shop=shop, kind="trending", actor=SYSTEM)
    assert registry.refresh(shop.pk)
    assert serve(shop, "home").model_versions == {"trending": first}


def test_rules_are_compiled_ahead_for_this_minute_and_the_next(shop):
    from campaigns.services import promotion_create, promotion_publish

    promotion = promotion_create(
        shop=shop, actor=SYSTEM, fields={"name": "Boost", "target": {"skus": ["P0001"]}, "action": "boost", "factor": 2}
    )
    promotion_publish(promotion=promotion, actor=SYSTEM)

    def now_minute() -> int:
        return int(datetime.now(UTC).timestamp() // 60)

    before = now_minute()
    registry.refresh(shop.pk)
    state = registry.state(shop.pk)
    after = now_minute()

    # The refresh ran in one of the minutes from before to after (the same one, unless
    # the clock crossed a minute meanwhile): that minute and the next are compiled.
    home = {key[1] for key in state.rules if key[0] == "home"}
    minute = next((m for m in range(before, after + 1) if {m, m + 1} <= home), None)
    assert minute is not None, (before, after, sorted(home))
    assert [rule.source_id for rule in state.rules[("home", minute)].rules] == [promotion.pk]


def test_a_corrupt_new_version_is_skipped_and_the_current_one_keeps_serving(shop):
    (first,) = ActiveModel.objects.filter(shop=shop).values_list("version_id", flat=True)
    before = serve(shop, "home")
    (second,) = train(shop, ["trending"], {"half_life_days": 0.01})
    arrays = artifact_absolute_path(second.artifact_path) / MODEL_DIR / "arrays.npz"
    data = bytearray(arrays.read_bytes())
    data[-1] ^= 0xFF
    arrays.write_bytes(bytes(data))

    model_version_activate(version=second, actor=SYSTEM)
    assert registry.refresh(shop.pk) is False  # nothing new could be loaded: the same state

    after = serve(shop, "home")
    assert after.model_versions == {"trending": first}
    assert skus(after) == skus(before)
    second.refresh_from_db()
    assert second.status == ModelVersion.Status.FAILED  # the registry's verdict, for the console
    assert registry.refresh(shop.pk) is False  # and it is not read again on every cycle


def test_a_version_that_fails_to_load_for_any_reason_does_not_fail_requests(shop, monkeypatch):
    (second,) = train(shop, ["trending"], {"half_life_days": 0.01})
    model_version_activate(version=second, actor=SYSTEM)
    loads: list[int] = []

    def broken(version, shop_id):
        loads.append(version.version_id)
        raise RuntimeError("an artifact of a format this process cannot read")

    monkeypatch.setattr("recommender.serving.state.model_load", broken)
    registry.reset()  # a process without a state yet: its first request builds it

    served = serve(shop, "home")

    assert served.model_versions == {}  # the new version would not load; no trending model at all
    assert len(served.items) == 5  # the fallbacks still fill the list
    assert {item.fallback for item in served.items} == {"recent"}
    assert registry.refresh(shop.pk) is False
    assert loads == [second.pk]  # tried once per process, not on every refresh

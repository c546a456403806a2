"""Campaigns services: validation, audit (one row per changed object), the campaigns
version, experiment lifecycle and versions, default placements, the cached state."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction

from campaigns import services
from campaigns.models import (
    CampaignsVersion,
    Experiment,
    ExperimentVersion,
    Placement,
    Promotion,
    Strategy,
)
from campaigns.services import CampaignsConflict, VariantSpec
from campaigns.state import CampaignStateCache, state_load
from campaigns.strategy import DEFAULT_STRATEGIES, StrategyConfig
from catalog.models import AuditEntry, Shop
from tests.campaigns.conftest import ACTOR
from tests.factories import ShopFactory, StrategyFactory

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def audit_rows(shop, **filters):
    return list(AuditEntry.objects.filter(shop=shop, **filters).order_by("id"))


def version_of(shop) -> int:
    return CampaignsVersion.objects.filter(shop=shop).values_list("version", flat=True).first() or 0


# --- strategies and placements --------------------------------------------------------------


def test_strategy_is_validated_on_save(shop):
    with pytest.raises(ValidationError) as caught:
        services.strategy_create(
            shop=shop,
            actor=ACTOR,
            fields={"name": "Bad", "config": {"sources": {"telepathy": 1}, "size": 99, "extra": 1}},
        )
    assert caught.value.message_dict == {
        "config": [
            "extra: unknown field; expected diversity, filters, size, sources",
            "sources.telepathy: unknown source; expected one of personal, similar, bought_together, also_viewed, "
            "trending, new_arrivals, session",
            "size: must be a whole number from 1 to 50",
        ]
    }
    assert Strategy.objects.filter(shop=shop).count() == 0
    assert audit_rows(shop) == []


def test_strategy_config_round_trips_through_its_dataclass():
    config = StrategyConfig.from_dict(
        {
            "sources": {"session": 2, "personal": 1.0},
            "filters": {"price_min": 5, "price_max": 50, "categories": ["Toys"], "exclude_purchased": True},
            "diversity": {"max_per_category": 2, "mmr_lambda": 0.3},
            "size": 8,
        }
    )
    assert config.weights == {"personal": 1.0, "session": 2.0}
    assert (config.filters.price_min, config.filters.categories, config.diversity.mmr_lambda) == (5.0, ("Toys",), 0.3)
    assert StrategyConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("kind", sorted(DEFAULT_STRATEGIES))
def test_default_strategies_are_valid(kind):
    assert (
        StrategyConfig.from_dict(DEFAULT_STRATEGIES[kind]).to_dict()["sources"] == DEFAULT_STRATEGIES[kind]["sources"]
    )


def test_create_update_delete_write_one_audit_row_each_with_before_and_after(shop):
    # Create
    strategy = services.strategy_create(
        shop=shop, actor=ACTOR, fields={"name": "S", "config": {"sources": {"trending": 1}}}
    )
    # Update (and an update that changes nothing)
    services.strategy_update(strategy=strategy, actor=ACTOR, fields={"name": "S2"})
    services.strategy_update(strategy=strategy, actor=ACTOR, fields={"name": "S2"})
    # Delete
    services.strategy_delete(strategy=Strategy.objects.get(pk=strategy.pk), actor=ACTOR)
    rows = audit_rows(shop, object_type="strategy")
    assert [(r.action, r.object_id, r.actor_label) for r in rows] == [
        ("create", str(strategy.pk), "system:tests"),
        ("update", str(strategy.pk), "system:tests"),
        ("delete", str(strategy.pk), "system:tests"),
    ]
    assert rows[0].before is None
    assert rows[0].after["config"]["sources"] == {"trending": 1.0}
    assert (rows[1].before["name"], rows[1].after["name"]) == ("S", "S2")
    assert (rows[2].before["name"], rows[2].after) == ("S2", None)
    assert version_of(shop) == 3


def test_strategy_in_use_cannot_be_deleted(shop, placements):
    with pytest.raises(CampaignsConflict) as caught:
        services.strategy_delete(strategy=placements["home"].default_strategy, actor=ACTOR)
    assert (caught.value.code, caught.value.message) == ("in_use", "the strategy is the default of placement(s) home")


def test_placement_slug_is_unique_per_shop_and_strategy_must_be_the_shops(shop, placements):
    other_strategy = StrategyFactory()
    with pytest.raises(ValidationError) as caught:
        services.placement_create(
            shop=shop,
            actor=ACTOR,
            fields={"slug": "home", "name": "Again", "kind": "home", "default_strategy": other_strategy},
        )
    assert caught.value.message_dict == {"default_strategy": ["must be a strategy of the same shop"]}
    with pytest.raises(ValidationError) as caught:
        services.placement_create(
            shop=shop,
            actor=ACTOR,
            fields={
                "slug": "home",
                "name": "Again",
                "kind": "home",
                "default_strategy": placements["home"].default_strategy,
            },
        )
    assert caught.value.message_dict == {"slug": ["a placement with this slug already exists"]}


def test_createshop_creates_the_four_default_placements_with_their_strategies(db, capsys):
    call_command("createshop", "fresh-shop", "--timezone", "Europe/Berlin")
    shop = Shop.objects.get(slug="fresh-shop")
    placements = {p.slug: p for p in Placement.objects.filter(shop=shop).select_related("default_strategy")}
    assert sorted(placements) == ["cart", "category", "home", "product"]
    for slug, placement in placements.items():
        assert placement.kind == slug
        assert placement.default_strategy.config == StrategyConfig.from_dict(DEFAULT_STRATEGIES[slug]).to_dict()
    assert [(r.action, r.object_type) for r in audit_rows(shop, object_type__in=["strategy", "placement"])] == [
        ("create", "strategy"),
        ("create", "placement"),
    ] * 4
    # Calling it again creates nothing
    assert services.placements_create_defaults(shop=shop, actor=ACTOR) == []


# --- promotions ---------------------------------------------------------------------------------


def promotion_fields(**overrides):
    return {"name": "Sale", "target": {"brands": ["Acme"]}, "action": "boost", "factor": 1.5, **overrides}


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"action": "pin", "factor": None}, {"slot": ["a pin needs a slot from 1 to 50"]}),
        ({"factor": 0}, {"factor": ["a boost needs a factor above 0 and at most 100"]}),
        ({"action": "exclude"}, {"factor": ["only a boost has a factor"]}),
        (
            {"target": {}},
            {"target": ["needs at least one criterion (skus, categories, brands, tags, attributes, price, new)"]},
        ),
        (
            {"target": {"colour": ["red"]}},
            {
                "target": [
                    "colour: unknown field; expected attributes, brands, categories, new_within_days, "
                    "price_max, price_min, skus, tags"
                ]
            },
        ),
        (
            {"starts_at": datetime(2026, 12, 2, tzinfo=UTC), "ends_at": datetime(2026, 12, 1, tzinfo=UTC)},
            {"ends_at": ["must be after starts_at"]},
        ),
        (
            {"starts_at": datetime(2026, 12, 2, 0, 0, 30, tzinfo=UTC)},
            {"starts_at": ["must be a whole minute (schedules have minute resolution)"]},
        ),
        ({"yearly_from": "11-20"}, {"yearly_until": ["a yearly window needs both yearly_from and yearly_until"]}),
        ({"yearly_from": "11-31", "yearly_until": "12-01"}, {"yearly_from": ["'11-31' is not a day of the year"]}),
        ({"weekdays": [0, 7]}, {"weekdays": ["must be distinct weekday numbers from 0 (Monday) to 6 (Sunday)"]}),
    ],
)
def test_promotion_validation(shop, fields, errors):
    with pytest.raises(ValidationError) as caught:
        services.promotion_create(shop=shop, actor=ACTOR, fields=promotion_fields(**fields))
    assert caught.value.message_dict == errors


def test_promotion_scope_must_name_placements_of_the_shop(shop, placements):
    with pytest.raises(ValidationError) as caught:
        services.promotion_create(shop=shop, actor=ACTOR, fields=promotion_fields(all_placements=False))
    assert caught.value.message_dict == {"placements": ["choose at least one placement, or set all_placements"]}
    promotion = services.promotion_create(
        shop=shop, actor=ACTOR, fields=promotion_fields(all_placements=False), placements=[placements["cart"]]
    )
    assert [p.slug for p in promotion.placements.all()] == ["cart"]
    assert audit_rows(shop, object_type="promotion")[0].after["placements"] == ["cart"]


def test_promotion_lifecycle_publish_pause_and_derived_phase(shop):
    promotion = services.promotion_create(
        shop=shop,
        actor=ACTOR,
        fields=promotion_fields(
            starts_at=datetime(2026, 11, 27, 8, tzinfo=UTC), ends_at=datetime(2026, 12, 1, tzinfo=UTC)
        ),
    )
    assert promotion.lifecycle(datetime(2026, 11, 1, tzinfo=UTC)) == "draft"
    published = services.promotion_publish(promotion=promotion, actor=ACTOR, now=datetime(2026, 11, 1, tzinfo=UTC))
    assert published.status == "published"
    assert [published.lifecycle(datetime(2026, m, d, tzinfo=UTC)) for m, d in ((11, 1), (11, 28), (12, 2))] == [
        "scheduled",
        "live",
        "ended",
    ]
    paused = services.promotion_pause(promotion=published, actor=ACTOR)
    assert paused.lifecycle(datetime(2026, 11, 28, tzinfo=UTC)) == "paused"
    with pytest.raises(CampaignsConflict):
        services.promotion_pause(promotion=paused, actor=ACTOR)
    with pytest.raises(CampaignsConflict) as caught:
        services.promotion_publish(promotion=paused, actor=ACTOR, now=datetime(2026, 12, 5, tzinfo=UTC))
    assert caught.value.code == "ended"
    assert [r.action for r in audit_rows(shop, object_type="promotion")] == ["create", "publish", "pause"]
    assert audit_rows(shop, action="pause")[0].before["status"] == "published"
    assert audit_rows(shop, action="pause")[0].after["status"] == "paused"


def test_every_change_moves_the_campaigns_version_serving_polls(shop):
    start = version_of(shop)
    promotion = services.promotion_create(shop=shop, actor=ACTOR, fields=promotion_fields())
    services.promotion_update(promotion=promotion, actor=ACTOR, fields={"factor": 2.0})
    services.promotion_publish(promotion=promotion, actor=ACTOR)
    assert version_of(shop) == start + 3
    assert state_load(shop.pk).version == start + 3


def test_state_cache_polls_the_version_and_reloads_only_on_change(shop, placements, django_assert_num_queries):
    clock = [100.0]
    cache = CampaignStateCache(refresh_s=1.0, clock=lambda: clock[0])
    first = cache.get(shop.pk)
    # Within the refresh interval: no query at all
    with django_assert_num_queries(0):
        assert cache.get(shop.pk) is first
    # After it, unchanged: one query (the version), same object
    clock[0] += 1.5
    with django_assert_num_queries(1):
        assert cache.get(shop.pk) is first
    # A change: the next poll reloads
    services.promotion_publish(
        promotion=services.promotion_create(shop=shop, actor=ACTOR, fields=promotion_fields()), actor=ACTOR
    )
    assert cache.get(shop.pk) is first  # not yet polled
    clock[0] += 1.5
    reloaded = cache.get(shop.pk)
    assert reloaded is not first
    assert reloaded.version == first.version + 2
    assert [p.name for p in reloaded.promotions] == ["Sale"]


def test_state_holds_published_promotions_in_rule_order(shop):
    low = services.promotion_create(shop=shop, actor=ACTOR, fields=promotion_fields(name="low", priority=1))
    high = services.promotion_create(shop=shop, actor=ACTOR, fields=promotion_fields(name="high", priority=9))
    older_tie = services.promotion_create(shop=shop, actor=ACTOR, fields=promotion_fields(name="tie-a", priority=1))
    services.promotion_create(shop=shop, actor=ACTOR, fields=promotion_fields(name="draft"))
    for promotion in (older_tie, high, low):
        services.promotion_publish(promotion=promotion, actor=ACTOR)
    assert [p.name for p in state_load(shop.pk).promotions] == ["high", "low", "tie-a"]


# --- experiments ------------------------------------------------------------------------------------


def variants(a: int = 50, b: int = 50, strategy=None):
    return [VariantSpec("control", a, is_control=True), VariantSpec("treatment", b, strategy=strategy)]


def new_experiment(shop, placement, name="Test", **fields):
    return services.experiment_create(
        shop=shop, actor=ACTOR, fields={"name": name, "placement": placement, **fields}, variants=variants()
    )


@pytest.mark.parametrize(
    ("specs", "problems"),
    [
        ([VariantSpec("a", 100, True)], ["an experiment needs 2 to 10 variants"]),
        ([VariantSpec("a", 50, True), VariantSpec("a", 50)], ["variant names must be distinct"]),
        ([VariantSpec("a", 50), VariantSpec("b", 50)], ["exactly one variant must be the control"]),
        ([VariantSpec("a", 50, True), VariantSpec("b", 40)], ["allocations must add up to 100, not 90"]),
        (
            [VariantSpec("holdout", 50, True), VariantSpec("b", 50)],
            ["'holdout' is reserved for held-out units"],
        ),
    ],
)
def test_experiment_variants_are_validated(shop, placements, specs, problems):
    with pytest.raises(ValidationError) as caught:
        services.experiment_create(
            shop=shop, actor=ACTOR, fields={"name": "X", "placement": placements["home"]}, variants=specs
        )
    assert caught.value.message_dict == {"variants": problems}


def test_changing_the_allocation_of_a_running_experiment_starts_a_new_version(shop, placements):
    experiment = new_experiment(shop, placements["home"])
    running = services.experiment_start(experiment=experiment, actor=ACTOR, now=T0)
    assert running.version == 1
    # When the split changes while running
    changed = services.experiment_update(
        experiment=running, actor=ACTOR, fields={}, variants=variants(30, 70), now=T0 + timedelta(days=2)
    )
    # Then a second version starts where the first ends; both are kept
    assert changed.version == 2
    versions = list(ExperimentVersion.objects.filter(experiment=experiment).order_by("number"))
    assert [(v.number, v.started_at, v.ended_at) for v in versions] == [
        (1, T0, T0 + timedelta(days=2)),
        (2, T0 + timedelta(days=2), None),
    ]
    assert [v["allocation"] for v in versions[0].allocation["variants"]] == [50, 50]
    assert [v["allocation"] for v in versions[1].allocation["variants"]] == [30, 70]
    # And serving assigns by the new version
    assert state_load(shop.pk).experiments[placements["home"].pk][0].version == 2
    # A change of name only is not a new version
    renamed = services.experiment_update(experiment=changed, actor=ACTOR, fields={"name": "Renamed"})
    assert renamed.version == 2
    # And so is a change of the holdout
    assert services.experiment_update(experiment=renamed, actor=ACTOR, fields={"holdout_percent": 5}).version == 3
    assert [r.action for r in audit_rows(shop, object_type="experiment")] == [
        "create",
        "start",
        "update",
        "update",
        "update",
    ]


def test_one_running_experiment_per_placement(shop, placements):
    first = services.experiment_start(experiment=new_experiment(shop, placements["home"], "A"), actor=ACTOR)
    second = new_experiment(shop, placements["home"], "B")
    with pytest.raises(CampaignsConflict) as caught:
        services.experiment_start(experiment=second, actor=ACTOR)
    assert (caught.value.code, caught.value.message) == (
        "placement_busy",
        'experiment "A" is already running on this placement',
    )
    # Another placement is free
    assert (
        services.experiment_start(experiment=new_experiment(shop, placements["cart"], "C"), actor=ACTOR).status
        == "running"
    )
    # And the database refuses a second running row even without the service check
    with pytest.raises(IntegrityError), transaction.atomic():
        Experiment.objects.filter(pk=second.pk).update(status="running")
    assert first.status == "running"


def test_schedule_conflicts_with_an_overlapping_schedule_on_the_placement(shop, placements):
    starts = datetime(2031, 1, 10, tzinfo=UTC)
    services.experiment_schedule(
        experiment=new_experiment(shop, placements["home"], "Jan"),
        actor=ACTOR,
        starts_at=starts,
        stops_at=starts + timedelta(days=10),
    )
    overlapping = new_experiment(shop, placements["home"], "Overlap")
    with pytest.raises(CampaignsConflict):
        services.experiment_schedule(experiment=overlapping, actor=ACTOR, starts_at=starts + timedelta(days=5))
    after = services.experiment_schedule(experiment=overlapping, actor=ACTOR, starts_at=starts + timedelta(days=10))
    assert after.status == "scheduled"


def test_scheduled_experiment_is_started_and_stopped_by_the_clock(shop, placements):
    starts = datetime(2031, 3, 1, tzinfo=UTC)
    experiment = services.experiment_schedule(
        experiment=new_experiment(shop, placements["home"]),
        actor=ACTOR,
        starts_at=starts,
        stops_at=starts + timedelta(days=14),
    )
    assert services.experiments_advance(now=starts - timedelta(seconds=1)) == (0, 0)
    assert services.experiments_advance(now=starts + timedelta(minutes=1)) == (1, 0)
    experiment.refresh_from_db()
    assert (experiment.status, experiment.started_at) == ("running", starts)
    assert services.experiments_advance(now=starts + timedelta(days=15)) == (0, 1)
    experiment.refresh_from_db()
    assert (experiment.status, experiment.stopped_at) == ("stopped", starts + timedelta(days=14))
    version = ExperimentVersion.objects.get(experiment=experiment)
    assert (version.started_at, version.ended_at) == (starts, starts + timedelta(days=14))
    actions = [(r.action, r.actor_label) for r in audit_rows(shop, object_type="experiment")]
    assert actions[-2:] == [("start", "system:experiment schedule"), ("stop", "system:experiment schedule")]


def test_stopping_a_scheduled_experiment_before_it_starts_returns_it_to_draft(shop, placements):
    experiment = services.experiment_schedule(
        experiment=new_experiment(shop, placements["home"]), actor=ACTOR, starts_at=datetime(2031, 3, 1, tzinfo=UTC)
    )
    stopped = services.experiment_stop(experiment=experiment, actor=ACTOR, now=datetime(2031, 2, 1, tzinfo=UTC))
    assert (stopped.status, stopped.starts_at) == ("draft", None)
    assert ExperimentVersion.objects.filter(experiment=experiment).count() == 0


def test_promote_winner_makes_the_variant_the_placement_default(shop, placements):
    better = StrategyFactory(shop=shop, name="Better", config={"sources": {"session": 1.0}})
    experiment = services.experiment_create(
        shop=shop,
        actor=ACTOR,
        fields={"name": "Session first", "placement": placements["home"]},
        variants=[
            VariantSpec("control", 50, is_control=True),
            VariantSpec("session", 50, strategy=better, promotions_on=False, model_version_id=12),
        ],
    )
    services.experiment_start(experiment=experiment, actor=ACTOR, now=T0)
    # A failed sample-ratio check refuses
    with pytest.raises(CampaignsConflict) as caught:
        services.experiment_promote_winner(experiment=experiment, actor=ACTOR, variant_name="session", srm_ok=False)
    assert caught.value.code == "srm_failed"
    with pytest.raises(ValidationError):
        services.experiment_promote_winner(experiment=experiment, actor=ACTOR, variant_name="nope", srm_ok=True)
    # A trustworthy one promotes
    promoted = services.experiment_promote_winner(
        experiment=experiment, actor=ACTOR, variant_name="session", srm_ok=True, now=T0 + timedelta(days=14)
    )
    assert (promoted.status, promoted.winner, promoted.stopped_at) == ("promoted", "session", T0 + timedelta(days=14))
    home = Placement.objects.get(pk=placements["home"].pk)
    assert (home.default_strategy_id, home.promotions_enabled, home.model_version_id) == (better.pk, False, 12)
    rows = audit_rows(shop, object_type__in=["experiment", "placement"], action__in=["promote", "update"])
    assert [(r.object_type, r.action) for r in rows] == [("experiment", "promote"), ("placement", "update")]
    assert rows[1].before["default_strategy"] == placements["home"].default_strategy_id
    assert rows[1].after["default_strategy"] == better.pk
    assert placements["home"].pk not in state_load(shop.pk).experiments


def test_only_draft_experiments_can_be_deleted(shop, placements):
    running = services.experiment_start(experiment=new_experiment(shop, placements["home"]), actor=ACTOR)
    with pytest.raises(CampaignsConflict):
        services.experiment_delete(experiment=running, actor=ACTOR)
    draft = new_experiment(shop, placements["cart"])
    services.experiment_delete(experiment=draft, actor=ACTOR)
    assert not Experiment.objects.filter(pk=draft.pk).exists()
    assert audit_rows(shop, object_type="experiment", action="delete")[0].before["name"] == "Test"


def test_placement_with_promotions_or_experiments_cannot_be_deleted(shop, placements):
    services.promotion_create(
        shop=shop, actor=ACTOR, fields=promotion_fields(all_placements=False), placements=[placements["cart"]]
    )
    new_experiment(shop, placements["home"])
    with pytest.raises(CampaignsConflict):
        services.placement_delete(placement=placements["cart"], actor=ACTOR)
    with pytest.raises(CampaignsConflict):
        services.placement_delete(placement=placements["home"], actor=ACTOR)
    services.placement_delete(placement=placements["category"], actor=ACTOR)
    assert not Placement.objects.filter(shop=shop, slug="category").exists()


def test_other_shops_are_untouched(shop, placements):
    other = ShopFactory()
    services.promotion_create(shop=shop, actor=ACTOR, fields=promotion_fields())
    assert Promotion.objects.filter(shop=other).count() == 0
    assert version_of(other) == 0
    assert state_load(other.pk).placements == {}

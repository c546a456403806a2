from datetime import UTC, datetime, timedelta
from analytics.rollups import rollups_run
from analytics.models import *
from tests.analytics.helpers import serve, event, snapshot
from tests.factories import ProductFactory, ShopperFactory
from django.utils import timezone

def test_smoke(shop):
    p = [ProductFactory(shop=shop) for _ in range(3)]
    s = ShopperFactory(shop=shop)
    t0 = timezone.now() - timedelta(days=2)
    L = serve(shop, p, t0, shopper=s, promotions={p[0].pk: [7]}, model_versions={"als": 5})
    event(shop, "impression", s, p[0], t0 + timedelta(seconds=5), served=L)
    event(shop, "click", s, p[0], t0 + timedelta(seconds=10), served=L)
    event(shop, "purchase", s, p[0], t0 + timedelta(hours=3), price="12.50", quantity=2)
    r = rollups_run(shop.pk)
    print(r)
    for m in (AttributedEvent, PlacementRollup, PromotionRollup, PromotedItemRollup, ModelVersionRollup):
        print(m.__name__, list(m.objects.values()))
    a = snapshot(shop)
    from analytics.rollups import rollups_rebuild
    rollups_rebuild(shop.pk)
    print(rollups_run(shop.pk))
    assert snapshot(shop) == a

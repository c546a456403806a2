"""The serving state of a shop in this process, and the refresher that keeps it current.

``ServingState`` is everything a request reads, in memory and immutable: the catalog
snapshot, the campaign state, the loaded model versions with their indexes and their
view over the snapshot, the fresh product embeddings, the newest products, the rules
compiled for this minute and the next, and the cache of non-personal lists. A request
takes one state reference at its start and uses only it: it never waits for a load and
never sees half a state.

``ServingRegistry`` (one per process: ``registry``) holds the current state per shop.
The first request for a shop builds it (the only time a request waits). After that a
background thread (``SERVING_BACKGROUND_THREADS``) polls every ``SERVING_REFRESH_S``
seconds, per shop, the change counters - ``Shop.catalog_version``, the campaigns
version and time zone (one query) and the active model versions (one query) - and when
one moved builds a new state off the request path, reusing every unchanged part, then
swaps the reference (one attribute assignment: atomic). A model version activated or
rolled back is therefore served within ``SERVING_REFRESH_S`` plus its load time, with
no restart and no failed request. A version that cannot be loaded (a corrupt artifact,
or any other error while loading it) is logged and skipped, once per process; the
state keeps the version it had. The thread uses a short-lived database connection
per cycle.

Rules are compiled here, not on the request path: for every placement where promotions
may apply, for the current and the next minute (schedules have minute resolution), and
again whenever the snapshot or the campaigns change.
"""

import gc
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType

import numpy as np
from django.conf import settings
from django.db import connection

from campaigns.rules import CompiledRules, compiled_rules, rules_compile
from campaigns.state import CampaignState, state_load
from catalog.snapshot import CatalogSnapshot, snapshot_load, snapshot_refresh
from recommender.artifacts import ArtifactCorrupt
from recommender.selectors import (
    ServableVersion,
    ServingVersions,
    active_versions_for_shop,
    servable_versions,
    serving_versions,
)
from recommender.serving.bundle import ModelView, ServingModel, model_load, model_view
from recommender.serving.cache import ListCache
from recommender.serving.filters import category_ids_for_paths
from recommender.serving.fresh import FreshEmbeddings, fresh_load, fresh_refresh

logger = logging.getLogger(__name__)

NEW_ARRIVALS = 500  # newest recommendable products kept for the new-arrivals source
FRESH_KINDS = ("text_similarity", "cold_start")  # models whose data cut-off bounds the fresh embeddings


class UnknownShop(LookupError):
    pass


@dataclass(frozen=True, eq=False)
class ServingState:
    shop_id: int
    versions: ServingVersions
    snapshot: CatalogSnapshot
    campaigns: CampaignState
    models: Mapping[str, ServingModel]  # the active version of each kind
    extra_models: Mapping[int, ServingModel]  # by version id: versions placements and variants name
    data_read_at: Mapping[int, datetime]  # version id -> when its training data was read
    fresh: FreshEmbeddings
    views: Mapping[int | None, ModelView]  # None: the active models; a version id: with it swapped in
    new_arrivals: np.ndarray  # int64 snapshot indices of the newest recommendable products
    by_recency: np.ndarray  # int64 snapshot indices of every recommendable product, newest first
    rules: Mapping[tuple[str, int], CompiledRules]  # (placement slug, unix minute) -> compiled
    cache: ListCache
    built_at: float = field(default_factory=time.time)
    _category_filters: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict)

    def view_for(self, model_version_id: int | None) -> ModelView:
        """The models a resolution asks for: the active ones, or with the named version
        of its kind swapped in when that version is loaded (an unknown id: the active ones)."""
        return self.views.get(model_version_id) or self.views[None]

    def rules_for(self, placement_slug: str, at: datetime) -> CompiledRules | None:
        """The rules compiled for ``at``'s minute (the refresher compiles a minute ahead);
        None when the shop has no promotion and no seasonal boost at all.

        Should the refresher have fallen behind, the previous minute's rules serve (at
        most a minute late); with none at all they are compiled here, once per process."""
        if not self.campaigns.promotions and not self.campaigns.seasonal_boosts:
            return None
        minute = int(at.timestamp() // 60)
        compiled = self.rules.get((placement_slug, minute)) or self.rules.get((placement_slug, minute - 1))
        if compiled is None:
            logger.warning("serving: rules of %s/%s compiled on the request path", self.shop_id, placement_slug)
            compiled = compiled_rules(self.campaigns, self.snapshot, placement_slug, at)
        return compiled

    def category_filter(self, paths: tuple[str, ...]) -> np.ndarray | None:
        """Sorted category ids a strategy's ``categories`` filter allows (None: no filter)."""
        if not paths:
            return None
        found = self._category_filters.get(paths)
        if found is None:
            found = category_ids_for_paths(self.snapshot, paths)
            self._category_filters[paths] = found  # a concurrent duplicate computes the same
        return found

    def model_versions(self, model_version_id: int | None) -> dict[str, int]:
        return self.view_for(model_version_id).version_ids()


# -- building -------------------------------------------------------------------------------


def _named_versions(campaigns: CampaignState) -> set[int]:
    """Model version ids that placements and experiment variants name."""
    named = {p.model_version_id for p in campaigns.placements.values() if p.model_version_id}
    for experiments in campaigns.experiments.values():
        for experiment in experiments:
            named |= {v.model_version_id for v in experiment.variants if v.model_version_id}
    return named


def _rules_placements(campaigns: CampaignState) -> list[str]:
    """Placements where promotions or seasonal boosts may apply (none if the shop has none)."""
    if not campaigns.promotions and not campaigns.seasonal_boosts:
        return []
    with_variants = {
        experiment.placement_id
        for experiments in campaigns.experiments.values()
        for experiment in experiments
        if any(v.promotions_on for v in experiment.variants)
    }
    return [p.slug for p in campaigns.placements.values() if p.promotions_enabled or p.id in with_variants]


def _compile_rules(
    campaigns: CampaignState,
    snapshot: CatalogSnapshot,
    previous: Mapping[tuple[str, int], CompiledRules],
    now: float,
) -> Mapping[tuple[str, int], CompiledRules]:
    """Rules for this minute and the next, reusing ``previous`` entries (same snapshot
    and campaigns) and dropping minutes that are over."""
    minute = int(now // 60)
    rules = {key: compiled for key, compiled in previous.items() if key[1] >= minute - 1}
    for slug in _rules_placements(campaigns):
        for m in (minute, minute + 1):
            if (slug, m) not in rules:
                rules[(slug, m)] = rules_compile(campaigns, snapshot, slug, datetime.fromtimestamp(m * 60, tz=UTC))
    return MappingProxyType(rules)


def _recency(snapshot: CatalogSnapshot) -> np.ndarray:
    candidates = np.flatnonzero(snapshot.recommendable)
    order = np.lexsort((-candidates, -snapshot.created_ts[candidates]))
    return candidates[order].astype(np.int64)


def _views(
    models: Mapping[str, ServingModel],
    extra: Mapping[int, ServingModel],
    snapshot: CatalogSnapshot,
    fresh: FreshEmbeddings,
) -> Mapping[int | None, ModelView]:
    views: dict[int | None, ModelView] = {None: model_view(models, snapshot, fresh)}
    for version_id, model in extra.items():
        views[version_id] = model_view({**models, model.kind: model}, snapshot, fresh)
    return MappingProxyType(views)


def _fresh_cutoff(models: Mapping[str, ServingModel], data_read_at: Mapping[int, datetime]) -> datetime | None:
    times = [data_read_at[models[k].version_id] for k in FRESH_KINDS if k in models]
    return min(times) if times else None


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    state: ServingState | None = None
    failed: set[int] = field(default_factory=set)  # version ids that would not load


def _load_models(
    shop_id: int, wanted: set[int], have: dict[int, ServingModel], failed: set[int]
) -> tuple[dict[int, ServingModel], dict[int, datetime]]:
    """``have`` plus the wanted versions not loaded yet (each verified and loaded once)."""
    loaded = {vid: m for vid, m in have.items() if vid in wanted}
    read_at: dict[int, datetime] = {}
    missing = sorted(wanted - set(loaded) - failed)
    for version in servable_versions(shop_id, missing):
        read_at[version.version_id] = version.data_read_at
        try:
            loaded[version.version_id] = _timed_load(version, shop_id)
        except ArtifactCorrupt as error:  # the registry marked it FAILED
            failed.add(version.version_id)
            logger.error("serving: %s v%s of shop %s not loaded: %s", version.kind, version.number, shop_id, error)
        except Exception:
            # Any other failure to load (an artifact of an older format, an index that
            # cannot be built) must not fail every refresh, nor every request of a
            # process without a state yet: skip the version, keep serving the previous.
            failed.add(version.version_id)
            logger.exception("serving: %s v%s of shop %s not loaded", version.kind, version.number, shop_id)
    return loaded, read_at


def _timed_load(version: ServableVersion, shop_id: int) -> ServingModel:
    started = time.perf_counter()
    model = model_load(version, shop_id)
    logger.info(
        "serving: loaded %s v%s (version %s) of shop %s in %.2f s",
        version.kind,
        version.number,
        version.version_id,
        shop_id,
        time.perf_counter() - started,
    )
    return model


def state_build(shop_id: int, previous: ServingState | None, failed: set[int]) -> ServingState:
    """A state reflecting the database now, reusing what did not change in ``previous``
    (the same object if nothing did, apart from rules compiled for a new minute)."""
    versions = serving_versions(shop_id)
    if versions is None:
        raise UnknownShop(shop_id)
    active = {a.kind: a.version_id for a in active_versions_for_shop(shop_id)}
    now = time.time()
    if previous is None:
        snapshot = snapshot_load(shop_id)
        campaigns = state_load(shop_id)
    else:
        catalog_moved = versions.catalog_version != previous.versions.catalog_version
        snapshot = snapshot_refresh(previous.snapshot) if catalog_moved else previous.snapshot
        campaigns_moved = (versions.campaigns_version, versions.timezone) != (
            previous.versions.campaigns_version,
            previous.versions.timezone,
        )
        campaigns = state_load(shop_id) if campaigns_moved else previous.campaigns

    named = _named_versions(campaigns)
    have: dict[int, ServingModel] = {}
    read_at: dict[int, datetime] = {}
    if previous is not None:
        have = {m.version_id: m for m in (*previous.models.values(), *previous.extra_models.values())}
        read_at = dict(previous.data_read_at)
    by_id, new_read_at = _load_models(shop_id, set(active.values()) | named, have, failed)
    read_at.update(new_read_at)
    models: dict[str, ServingModel] = {}
    for kind, version_id in active.items():
        if version_id in by_id:
            models[kind] = by_id[version_id]
        elif previous is not None and kind in previous.models:
            models[kind] = previous.models[kind]  # the new version would not load: keep serving the old one
    extra = {vid: by_id[vid] for vid in sorted(named) if vid in by_id}

    models_same = previous is not None and {k: m.version_id for k, m in models.items()} == {
        k: m.version_id for k, m in previous.models.items()
    }
    extra_same = previous is not None and set(extra) == set(previous.extra_models)
    cutoff = _fresh_cutoff(models, read_at)
    if previous is not None and cutoff == previous.fresh.cutoff:
        fresh = fresh_refresh(previous.fresh) if snapshot is not previous.snapshot else previous.fresh
    else:
        fresh = fresh_load(shop_id, cutoff)

    unchanged = (
        previous is not None
        and snapshot is previous.snapshot
        and campaigns is previous.campaigns
        and models_same
        and extra_same
        and fresh is previous.fresh
    )
    if unchanged:
        assert previous is not None
        rules = _compile_rules(campaigns, snapshot, previous.rules, now)
        if set(rules) == set(previous.rules):
            return previous
        return replace(previous, rules=rules)

    same_snapshot = previous is not None and snapshot is previous.snapshot
    same_rules_inputs = same_snapshot and previous is not None and campaigns is previous.campaigns
    views = (
        previous.views
        if previous is not None and same_snapshot and models_same and extra_same and fresh is previous.fresh
        else _views(models, extra, snapshot, fresh)
    )
    by_recency = previous.by_recency if previous is not None and same_snapshot else _recency(snapshot)
    return ServingState(
        shop_id=shop_id,
        versions=versions,
        snapshot=snapshot,
        campaigns=campaigns,
        models=MappingProxyType(models),
        extra_models=MappingProxyType(extra),
        data_read_at=MappingProxyType(read_at),
        fresh=fresh,
        views=views,
        new_arrivals=by_recency[:NEW_ARRIVALS],
        by_recency=by_recency,
        rules=_compile_rules(campaigns, snapshot, previous.rules if previous and same_rules_inputs else {}, now),
        cache=ListCache(),
    )


# -- the per-process registry and its refresher thread -------------------------------------------

# How often, at most, a new state that replaced no model sends the frozen objects back
# to the collector and collects them.
FULL_COLLECTION_INTERVAL_S = 3600.0
_last_full_collection = float("-inf")


def _freeze_long_lived(*, models_replaced: bool) -> None:
    """Move the objects alive now, a newly built state among them, to the collector's
    permanent generation (as recsite.wsgi does for the application's).

    A state holds hundreds of thousands of tracked objects (per-product attribute dicts
    and tag tuples, the SKU and id maps): every full collection walked them all, a pause
    of 250-500 ms on 100k products in the middle of whatever request triggered it.

    Frozen objects are never collected, and loaded models sit in reference cycles (a
    replaced model is freed only by a collection). So when the new state replaced a
    model (an activation, a rollback), and otherwise at most once per
    FULL_COLLECTION_INTERVAL_S, the frozen objects go back to the collector and are
    collected first: one full pause per model change instead of one every few seconds
    of traffic. A catalog or campaign change (the frequent kind) only freezes."""
    global _last_full_collection
    now = time.monotonic()
    if models_replaced or now - _last_full_collection >= FULL_COLLECTION_INTERVAL_S:
        _last_full_collection = now
        gc.unfreeze()
        gc.collect()
    gc.freeze()


class ServingRegistry:
    """The current ServingState of every shop this process serves. Thread-safe: readers
    take ``state()`` without a lock once it exists; builds of one shop are serialised by
    that shop's lock; the refresher swaps references."""

    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._thread_pid = 0
        self._stop = threading.Event()

    def state(self, shop_id: int) -> ServingState:
        """The shop's current state; built now (the request waits) if this process has none."""
        entry = self._entries.get(shop_id)
        if entry is not None and entry.state is not None:
            return entry.state
        with self._lock:
            entry = self._entries.setdefault(shop_id, _Entry())
        with entry.lock:
            if entry.state is None:
                started = time.perf_counter()
                entry.state = state_build(shop_id, None, entry.failed)
                logger.info("serving: state of shop %s built in %.2f s", shop_id, time.perf_counter() - started)
                _freeze_long_lived(models_replaced=False)
        if settings.SERVING_BACKGROUND_THREADS:
            self.start()
        return entry.state

    def refresh(self, shop_id: int) -> bool:
        """Poll the shop's change counters and swap in a new state if anything moved.
        Returns whether the state changed. What the refresher thread does every cycle."""
        entry = self._entries.get(shop_id)
        if entry is None or entry.state is None:
            return False
        with entry.lock:
            current = entry.state
            assert current is not None
            new = state_build(shop_id, current, entry.failed)
            if new is current:
                return False
            entry.state = new
        _freeze_long_lived(models_replaced=any(new.models.get(kind) is not m for kind, m in current.models.items()))
        return True

    def refresh_all(self) -> None:
        for shop_id in list(self._entries):
            try:
                self.refresh(shop_id)
            except UnknownShop:
                self.forget(shop_id)
            except Exception:
                logger.exception("serving: refresh of shop %s failed; the current state stays", shop_id)

    def forget(self, shop_id: int) -> None:
        with self._lock:
            self._entries.pop(shop_id, None)

    def start(self) -> None:
        """Start the refresher thread of this process (idempotent; a forked child starts its own)."""
        if self._thread is not None and self._thread.is_alive() and self._thread_pid == os.getpid():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and self._thread_pid == os.getpid():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop,), name="serving-refresher", daemon=True)
            self._thread_pid = os.getpid()
            self._thread.start()

    def stop(self) -> None:
        """Stop the refresher thread and wait for it (tests; process exit needs nothing)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=30)
        self._thread = None

    def reset(self) -> None:
        """Forget every state (tests)."""
        self.stop()
        with self._lock:
            self._entries.clear()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(settings.SERVING_REFRESH_S):
            try:
                self.refresh_all()
            finally:
                connection.close()  # this thread's own connection: never held between cycles


registry = ServingRegistry()

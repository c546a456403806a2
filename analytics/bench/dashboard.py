"""``make bench-analytics``: dashboard query time over rollups, next to a raw scan.

In one run, on 127.0.0.1, cleaning up after itself:

1. a fresh Postgres database (BENCH_DATABASE, default recsite_bench_analytics), migrated;
2. a synthetic shop (analytics.bench.synthetic): 90 days, 10M events (BENCH_EVENTS),
   1M served lists (BENCH_LISTS), 20,000 products, copied in with COPY;
3. the rollups built from nothing by the same code the Celery task runs
   (analytics.rollups.rollups_run), timed;
4. each query the dashboard and the analytics page run, timed over the rollups (median
   of BENCH_RUNS runs after one warm-up), and the same numbers computed by scanning the
   raw event and served-list logs in SQL (one run each), checked to be equal.

Prints a table and one line per target; writes the same to bench-results/analytics.txt.
"""

import os
import statistics
import subprocess
import sys
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from analytics.buckets import day_start, local_date

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
PG_SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
BENCH_DATABASE = os.environ.get("BENCH_DATABASE", "recsite_bench_analytics")
EVENTS = int(os.environ.get("BENCH_EVENTS", "10000000"))
LISTS = int(os.environ.get("BENCH_LISTS", str(EVENTS // 10)))
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "20000"))
SHOPPERS = int(os.environ.get("BENCH_SHOPPERS", "150000"))
RUNS = int(os.environ.get("BENCH_RUNS", "15"))
GOAL_MS = 100.0
RESULTS = ROOT / "bench-results" / "analytics.txt"


@dataclass
class Report:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(text, flush=True)

    def text(self) -> str:
        header = ("query", "rollups, median ms", "raw scan ms", "same numbers")
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(4)]
        lines = ["recsite bench-analytics", *self.notes, ""]
        for row in [header, *self.rows]:
            lines.append(
                f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]:<{widths[3]}}".rstrip()
            )
        return "\n".join([*lines, "", *self.targets, ""])


def main() -> int:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "recsite.settings",
        "DATABASE_URL": f"{PG_SERVER}/{BENCH_DATABASE}",
        "LOG_LEVEL": "WARNING",
        "DJANGO_DEBUG": "0",
    }
    os.environ.update(env)
    report = Report()
    report.note(f"load average before the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report.note(f"machine: {os.cpu_count()} CPUs; Postgres {PG_SERVER}/{BENCH_DATABASE}")
    _recreate_database()
    try:
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        _bench(report)
    finally:
        _drop_database()
    text = report.text()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print()
    print(text)
    return 0


def _bench(report: Report) -> None:
    from analytics.bench import raw
    from analytics.bench.synthetic import build_shop
    from analytics.experiments import experiment_results
    from analytics.kpis import (
        MetricsFilter,
        kpi_series,
        kpi_totals,
        kpis_by_model_version,
        kpis_by_placement,
        kpis_by_promotion,
        kpis_by_variant,
        model_version_history,
        promoted_items,
    )
    from analytics.models import Period
    from analytics.rollups import new_item_age, rollups_run
    from analytics.selectors import analytics_report, dashboard_summary

    bench = build_shop(events=EVENTS, lists=LISTS, products=PRODUCTS, shoppers=SHOPPERS, log=report.note)
    report.note(
        f"synthetic shop: {bench.events:,} events over 90 days ({_counts(bench.event_counts)}), "
        f"{bench.lists:,} served lists, {bench.products:,} products, {bench.shoppers:,} shoppers; "
        f"generated and copied in {bench.seconds:.0f} s"
    )
    began = time.monotonic()
    run = rollups_run(bench.shop.pk, budget_s=3600.0, now=bench.end)
    built = time.monotonic() - began
    report.note(
        f"rollups built from nothing in {built:.0f} s ({run.recomputed_hours:,} hours recomputed in {run.steps} steps, "
        f"{bench.events / built:,.0f} events/s); caught up: {'yes' if run.finished else 'no'}"
    )
    report.note(_sizes())

    shop = bench.shop
    zone = zoneinfo.ZoneInfo(shop.timezone)
    window = timedelta(hours=shop.attribution_window_hours)
    end = bench.end
    days90 = MetricsFilter(start=bench.start, end=end, granularity=Period.DAY)
    days30 = MetricsFilter(start=end - timedelta(days=30), end=end, granularity=Period.DAY)
    hours7 = MetricsFilter(start=end - timedelta(days=7), end=end, granularity=Period.HOUR)
    # Day rows cover whole local days: the raw scans use the same instants.
    days90 = _whole_days(days90, zone)
    days30 = _whole_days(days30, zone)

    def local_day(key: Any) -> Any:
        return key.astimezone(zone).date()

    counts = ("requests", "item_slots", "impressions", "clicks", "add_to_carts", "purchases", "revenue")

    def numbers(kpis: Any) -> tuple[Any, ...]:
        return tuple(getattr(kpis, name) for name in counts)

    def nonzero(table: dict[Any, tuple[Any, ...]]) -> dict[Any, tuple[Any, ...]]:
        return {k: v for k, v in table.items() if any(v)}

    day_key = ["({t} AT TIME ZONE %(zone)s)::date"]
    arm_key = ["l.placement_slug", "l.experiment_id", "l.experiment_version", "l.variant"]

    def totals_raw() -> Any:
        table = raw.grouped(shop.pk, days90.start, days90.end, window, list_key=[])
        distinct, new = raw.coverage(shop.pk, days90.start, days90.end, new_item_age().days)
        return nonzero(table), distinct, new

    def totals_rollup() -> Any:
        kpis = kpi_totals(shop, days90)
        return nonzero({(): numbers(kpis)}), kpis.distinct_items, kpis.new_item_slots

    now = end - timedelta(seconds=1)  # the dashboard as seen in the last hour of the data
    today = local_date(now, zone)

    def dashboard_rollup() -> Any:
        summary = dashboard_summary(shop, now)
        daily = nonzero({(local_day(p.start),): numbers(p.kpis) for p in summary.daily})
        current = nonzero({(t.slug,): numbers(t.current) for t in summary.placements})
        return daily, current

    def dashboard_raw() -> Any:
        tomorrow = day_start(today + timedelta(days=1), zone)
        chart_start = day_start(today - timedelta(days=27), zone)
        week_start = day_start(today - timedelta(days=6), zone)
        daily = raw.grouped(shop.pk, chart_start, tomorrow, window, list_key=day_key, zone=shop.timezone)
        current = raw.grouped(shop.pk, week_start, tomorrow, window, list_key=["l.placement_slug"])
        return nonzero(daily), nonzero(current)

    experiment = bench.experiment
    queries: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("dashboard: KPIs per placement, trends, daily chart", dashboard_rollup, dashboard_raw),
        ("totals with coverage, 90 days", totals_rollup, totals_raw),
        (
            "daily series, 90 days",
            lambda: nonzero({(local_day(p.start),): numbers(p.kpis) for p in kpi_series(shop, days90)}),
            lambda: nonzero(
                raw.grouped(shop.pk, days90.start, days90.end, window, list_key=day_key, zone=shop.timezone)
            ),
        ),
        (
            "hourly series, 7 days",
            lambda: nonzero({(p.start,): numbers(p.kpis) for p in kpi_series(shop, hours7)}),
            lambda: nonzero(
                raw.grouped(shop.pk, hours7.start, hours7.end, window, list_key=["date_trunc('hour', {t})"])
            ),
        ),
        (
            "by placement, 30 days",
            lambda: nonzero({b.key: numbers(b.kpis) for b in kpis_by_placement(shop, days30)}),
            lambda: nonzero(raw.grouped(shop.pk, days30.start, days30.end, window, list_key=["l.placement_slug"])),
        ),
        (
            "by experiment variant, 30 days",
            lambda: nonzero({b.key: numbers(b.kpis) for b in kpis_by_variant(shop, days30)}),
            lambda: nonzero(
                raw.grouped(
                    shop.pk,
                    days30.start,
                    days30.end,
                    window,
                    list_key=arm_key,
                    list_where="AND l.experiment_id IS NOT NULL",
                )
            ),
        ),
        (
            "by promotion, 30 days",
            lambda: nonzero({b.key: numbers(b.kpis) for b in kpis_by_promotion(shop, days30)}),
            lambda: nonzero(raw.by_promotion(shop.pk, days30.start, days30.end, window, per_item=False)),
        ),
        (
            "promoted items shown/clicked, 30 days",
            lambda: {
                (i.promotion_id, i.product_id): (i.served, i.impressions, i.clicks, i.purchases, i.revenue)
                for i in promoted_items(shop, days30)
            },
            lambda: {
                k: (v[1], v[2], v[3], v[5], v[6])
                for k, v in raw.by_promotion(shop.pk, days30.start, days30.end, window, per_item=True).items()
            },
        ),
        (
            "by model version, 30 days",
            lambda: nonzero({b.key: numbers(b.kpis) for b in kpis_by_model_version(shop, days30)}),
            lambda: nonzero(raw.by_model_version(shop.pk, days30.start, days30.end, window)),
        ),
        (
            "model versions, offline beside online (all time)",
            lambda: {
                (v.kind, v.version_id): numbers(v.online) for v in model_version_history(shop) if v.online is not None
            },
            lambda: nonzero(raw.by_model_version(shop.pk, days90.start - timedelta(days=1), days90.end, window)),
        ),
        (
            "experiment results (per unit, CUPED, mSPRT)",
            lambda: _experiment_numbers(experiment_results(experiment, record=False)),
            lambda: _raw_experiment(experiment.pk),
        ),
    ]
    medians = {}
    all_equal = True
    for name, rollup_query, raw_query in queries:
        rollup_query()  # warm-up
        timings = []
        for _ in range(RUNS):
            began = time.perf_counter()
            got = rollup_query()
            timings.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        expected = raw_query()
        raw_ms = (time.perf_counter() - began) * 1000
        equal = got == expected
        all_equal &= equal
        medians[name] = statistics.median(timings)
        report.rows.append((name, f"{medians[name]:.1f}", f"{raw_ms:,.0f}", "yes" if equal else "NO"))
        print(f"  {name}: {medians[name]:.1f} ms (raw scan {raw_ms:,.0f} ms) same numbers: {equal}", flush=True)
        if not equal:
            print(f"    rollups: {_short(got)}\n    raw:     {_short(expected)}", flush=True)

    began = time.perf_counter()
    analytics_report(shop, days30)
    page_ms = (time.perf_counter() - began) * 1000
    report.rows.append(("(the whole analytics page, 30 days: all its queries)", f"{page_ms:.1f}", "", ""))
    dashboard = [m for n, m in medians.items() if not n.startswith("experiment")]
    worst = max(dashboard)
    report.targets.append(
        f"target dashboard_query_ms: {worst:.1f} (goal <= {GOAL_MS:.0f} ms) {'met' if worst <= GOAL_MS else 'missed'}"
    )
    report.targets.append(
        f"target experiment_results_ms: {medians[queries[-1][0]]:.1f} (goal <= {GOAL_MS:.0f} ms) "
        f"{'met' if medians[queries[-1][0]] <= GOAL_MS else 'missed'}"
    )
    report.targets.append(
        f"target rollups_equal_raw_scan: {'yes' if all_equal else 'no'} (goal yes) {'met' if all_equal else 'missed'}"
    )


def _whole_days(metrics_filter: Any, zone: zoneinfo.ZoneInfo) -> Any:
    """The filter widened to whole local days (what day rows cover)."""
    return replace(
        metrics_filter,
        start=day_start(local_date(metrics_filter.start, zone), zone),
        end=day_start(local_date(metrics_filter.end - timedelta(microseconds=1), zone) + timedelta(days=1), zone),
    )


def _experiment_numbers(results: Any) -> dict[str, tuple[int, int]]:
    return {v.name: (v.units, v.exposures) for v in results.analysis.variants if v.units}


def _raw_experiment(experiment_id: int) -> dict[str, tuple[int, int]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT variant, count(DISTINCT unit_hash), count(*) FROM recommender_servedlist "
            "WHERE experiment_id = %s AND experiment_version = 1 GROUP BY variant",
            [experiment_id],
        )
        return {variant: (int(units), int(exposures)) for variant, units, exposures in cursor.fetchall()}


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {number:,}" for kind, number in sorted(counts.items(), key=lambda kv: -kv[1]))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 600 else text[:600] + "..."


def _sizes() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' AND "
            "(relname LIKE 'analytics_%%' OR relname IN ('catalog_event', 'recommender_servedlist'))"
        )
        sizes = dict(cursor.fetchall())
    raw_size = sizes.pop("catalog_event", 0) + sizes.pop("recommender_servedlist", 0)
    attributed = sizes.pop("analytics_attributedevent", 0)
    rollups = sum(sizes.values())
    return (
        f"sizes: raw logs {raw_size / 2**30:.2f} GiB; attributed events {attributed / 2**30:.2f} GiB; "
        f"rollups and per-unit tables {rollups / 2**20:.0f} MiB"
    )


def _admin_connect() -> Any:
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True)


def _recreate_database() -> None:
    with _admin_connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')


def _drop_database() -> None:
    from django.db import connections

    connections.close_all()
    with _admin_connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())

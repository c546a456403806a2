"""Micro-benchmark of the rules engine: ``python -m campaigns.bench.rules``.

Builds a synthetic shop in memory (default: 100k products, 200 live promotions, 20
seasonal boosts; no database is touched) and measures, in one run:

- ``rules_compile`` cold (first compile on a new snapshot: inverted indexes and target
  matching) and warm (the next minute: matches memoised);
- per request, side by side on the same candidates: rules off (what serving does without
  rules: sort by score, keep ``size``) and rules on (cached compile look-up plus
  ``rules_apply``), interleaved so both see the same machine state.

The target line reports ``rules_median_cost`` = median(rules on) - median(rules off) per
request, against the goal of at most 1 ms.
"""

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any

GOAL_MS = 1.0


def _setup_django() -> None:
    # A throwaway SQLite path, so importing settings never points at a real database.
    os.environ.setdefault("DATABASE_URL", "sqlite:////tmp/recsite-bench-rules.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")
    import django

    django.setup()


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000.0


def run(products: int, promotions: int, boosts: int, requests: int, candidates: int, size: int) -> dict[str, float]:
    """Run the benchmark and print its table; returns the figures (milliseconds)."""
    from campaigns import matching
    from campaigns.bench.synthetic import BENCH_INSTANT, synthetic_requests, synthetic_snapshot, synthetic_state
    from campaigns.rules import CompiledRulesCache, rules_apply, rules_compile

    at = BENCH_INSTANT
    snapshot = synthetic_snapshot(products, at=at)
    state = synthetic_state(promotions, boosts, products=products, at=at)
    batches = synthetic_requests(snapshot, requests, candidates)

    matching._indexes.pop(snapshot.shop_id, None)
    cold = _timed(partial(rules_compile, state, snapshot, "home", at))
    warm = statistics.median(
        _timed(partial(rules_compile, state, snapshot, "home", at + timedelta(minutes=m))) for m in range(1, 6)
    )
    compiled = rules_compile(state, snapshot, "home", at)
    live = len(compiled.rules)

    cache = CompiledRulesCache()
    cache.get(state, snapshot, "home", at)  # the compile is paid once per minute, not per request

    def rules_off(batch: list[Any]) -> list[Any]:
        return sorted(batch, key=lambda c: -c.score)[:size]

    def rules_on(batch: list[Any]) -> list[Any]:
        return rules_apply(cache.get(state, snapshot, "home", at), batch, size)

    for batch in batches[:50]:  # warm-up
        rules_off(batch)
        rules_on(batch)
    gc.collect()
    gc.disable()
    try:
        off: list[float] = []
        on: list[float] = []
        for batch in batches:
            off.append(_timed(partial(rules_off, batch)))
            on.append(_timed(partial(rules_on, batch)))
    finally:
        gc.enable()

    figures = {
        "compile_cold_ms": cold,
        "compile_warm_ms": warm,
        "off_median_ms": statistics.median(off),
        "off_p99_ms": _percentile(off, 0.99),
        "on_median_ms": statistics.median(on),
        "on_p99_ms": _percentile(on, 0.99),
    }
    figures["rules_median_cost_ms"] = figures["on_median_ms"] - figures["off_median_ms"]
    print(
        f"rules micro-benchmark: {products} products, {promotions} promotions + {boosts} seasonal boosts "
        f"({live} live rules at {at:%Y-%m-%d %H:%M} UTC), {candidates} candidates -> {size}, {requests} requests"
    )
    print(f"{'measure':<36}{'median ms':>12}{'p99 ms':>12}")
    print(f"{'rules_compile, cold (new snapshot)':<36}{cold:>12.2f}{'':>12}")
    print(f"{'rules_compile, warm (next minute)':<36}{warm:>12.2f}{'':>12}")
    print(f"{'per request, rules off':<36}{figures['off_median_ms']:>12.3f}{figures['off_p99_ms']:>12.3f}")
    print(f"{'per request, rules on':<36}{figures['on_median_ms']:>12.3f}{figures['on_p99_ms']:>12.3f}")
    cost = figures["rules_median_cost_ms"]
    print(f"target rules_median_cost: {cost:.3f} ms (goal <= {GOAL_MS:g} ms) {'met' if cost <= GOAL_MS else 'missed'}")
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--promotions", type=int, default=200)
    parser.add_argument("--boosts", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--size", type=int, default=12)
    args = parser.parse_args(argv)
    _setup_django()
    figures = run(args.products, args.promotions, args.boosts, args.requests, args.candidates, args.size)
    return 0 if figures["rules_median_cost_ms"] <= GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())

"""The rules micro-benchmark runs end to end (small sizes; the real run is
``python -m campaigns.bench.rules``) and reports its target line."""

import re

from campaigns.bench.rules import run


def test_bench_prints_its_table_and_target_line(capsys):
    figures = run(products=3000, promotions=40, boosts=4, requests=40, candidates=100, size=12)
    out = capsys.readouterr().out
    assert "rules micro-benchmark: 3000 products, 40 promotions + 4 seasonal boosts (44 live rules" in out
    assert re.search(r"^target rules_median_cost: -?\d+\.\d{3} ms \(goal <= 1 ms\) (met|missed)$", out, re.M)
    assert set(figures) == {
        "compile_cold_ms",
        "compile_warm_ms",
        "off_median_ms",
        "off_p99_ms",
        "on_median_ms",
        "on_p99_ms",
        "rules_median_cost_ms",
    }
    assert figures["rules_median_cost_ms"] == figures["on_median_ms"] - figures["off_median_ms"]

"""Settings read from the environment refuse values the product cannot run with, by name."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import recsite.settings as s; print(s.SERVING_ANN_MIN_ITEMS)"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("value", "expected"), [("1000", "1000"), ("50000", "50000")])
def test_the_approximate_index_threshold_is_read_from_the_environment(value, expected):
    done = _import_settings(RECSITE_SERVING_ANN_MIN_ITEMS=value)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


@pytest.mark.parametrize("value", ["1", "999", "lots"])
def test_an_approximate_index_threshold_below_a_thousand_is_refused_with_its_reason(value):
    done = _import_settings(RECSITE_SERVING_ANN_MIN_ITEMS=value)
    assert done.returncode != 0
    reason = "must be an integer" if value == "lots" else "must be at least 1000"
    assert f"RECSITE_SERVING_ANN_MIN_ITEMS {reason}, got" in done.stderr

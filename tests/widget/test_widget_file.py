"""static/recsite/widget.js as a file: small enough, and free of the DOM's markup sinks."""

import gzip
import re
from pathlib import Path

from django.conf import settings

WIDGET = Path(settings.BASE_DIR) / "static/recsite/widget.js"


def test_the_widget_is_at_most_8_kb_gzipped() -> None:
    assert len(gzip.compress(WIDGET.read_bytes(), compresslevel=9)) <= 8 * 1024


def test_the_widget_never_parses_markup_or_code() -> None:
    source = WIDGET.read_text()
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("//"))
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        'setAttribute("style"',
        "setAttribute('style'",
        "createContextualFragment",
        "DOMParser",
    ):
        assert sink not in code, sink
    # every href and src it sets goes through safeUrl()
    assert re.findall(r"\.(?:href|src) = (\w+)", code) == ["href", "src"]
    assert "var href = safeUrl(item.url);" in code and "var src = safeUrl(item.image_url);" in code

"""Product posters for the demo shop: MovieLens has no pictures, so each product gets
an SVG poster drawn from its SKU (colours) and title (text). Deterministic: the same
product always gets the same poster.
"""

import hashlib
import re
import textwrap
from dataclasses import dataclass

_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")
# MovieLens files titles as "Usual Suspects, The"; a poster says "The Usual Suspects".
_TRAILING_ARTICLE = re.compile(r"^(?P<rest>.+), (?P<article>The|A|An)$")
MAX_LINES = 5
LINE_CHARS = 14


@dataclass(frozen=True)
class Poster:
    title: str  # the whole title, for the SVG's <title>
    background: str
    accent: str
    lines: list[str]
    year: str


def _hsl(hue: int, saturation: int, lightness: int) -> str:
    return f"hsl({hue} {saturation}% {lightness}%)"


def poster_for(sku: str, title: str, year: object = None) -> Poster:
    """Colours from a hash of the SKU, the title wrapped onto at most five lines, and the
    year: ``year`` (the demo keeps it in the product's attributes), else a "(1995)" at
    the end of the title.

    The text is returned as plain strings; the SVG template escapes it (a title may
    hold anything a shop sends, markup included)."""
    digest = hashlib.sha256(sku.encode("utf-8", "surrogatepass")).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    match = _YEAR.match(title)
    name, year_in_title = (match["title"], match["year"]) if match else (title, "")
    article = _TRAILING_ARTICLE.match(name)
    if article:
        name = f"{article['article']} {article['rest']}"
    lines = textwrap.wrap(name, LINE_CHARS, break_long_words=True) or [""]
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES]
        lines[-1] = lines[-1][: LINE_CHARS - 1] + "…"
    return Poster(
        title=title,
        background=_hsl(hue, 45, 28),
        accent=_hsl((hue + 40) % 360, 70, 62),
        lines=lines,
        year=str(year) if isinstance(year, int) and not isinstance(year, bool) else year_in_title,
    )

"""The raw per-unit export: one CSV line at a time, so a response can stream it."""

import csv
from collections.abc import Iterable, Iterator, Sequence

# Spreadsheets run a cell that starts with one of these as a formula; unit ids and other
# strings can come from shoppers' browsers, so such cells are defused with a leading quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _ReturnLine:
    """A file-like whose ``write`` hands the formatted line back instead of storing it."""

    def write(self, line: str) -> str:
        return line


def per_unit_csv(rows: Iterable[Sequence[object]], columns: Sequence[str]) -> Iterator[str]:
    """Yield the CSV text of ``columns`` (header) and then each row, one line per item.

    RFC 4180 quoting (fields with commas, quotes or line breaks are quoted, quotes doubled;
    lines end in CRLF). ``None`` becomes an empty field, numbers are written as Python
    prints them (floats round-trip exactly). Strings that a spreadsheet would evaluate as a
    formula (starting with ``= + - @``, tab or CR) get a leading ``'``; numbers are never
    changed, so ``-3.5`` stays a number. A row with the wrong number of fields raises
    ValueError when it is reached. Lazy: feed it to a ``StreamingHttpResponse``, or write
    it out with ``file.writelines(per_unit_csv(rows, columns))``.
    """
    writer = csv.writer(_ReturnLine(), lineterminator="\r\n")
    yield writer.writerow([_defused(name) for name in columns])
    for number, row in enumerate(rows, start=1):
        if len(row) != len(columns):
            raise ValueError(f"row {number} has {len(row)} fields, the header has {len(columns)}")
        yield writer.writerow([_defused(value) if isinstance(value, str) else value for value in row])


def _defused(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text

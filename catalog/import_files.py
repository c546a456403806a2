"""Reading import files a piece at a time: CSV (with a header row) and JSON lines.

Memory stays constant whatever the file size: CSV is read in byte blocks that end on
a row boundary, JSON lines a bounded number of lines at a time. Every record keeps
the number of the line it starts on (1-based; the CSV header is line 1), so a bad
row can be reported as "line 12345". Lines are counted by ``\\n``.
"""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

FORMATS = ("csv", "jsonl")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_BOM = b"\xef\xbb\xbf"
# A quoted CSV value may hold line breaks; a block grows until its quotes balance, but
# not past this size (an unclosed quote would otherwise swallow the rest of the file).
MAX_BLOCK_BYTES = 64 * 1024 * 1024


class ImportFileError(Exception):
    """The file as a whole cannot be imported (unknown format, unusable header).
    Nothing of it has been stored when this is raised."""


def detect_format(path: Path, file_format: str | None = None) -> str:
    """``csv`` or ``jsonl``: ``file_format`` if given, else from the file's extension."""
    if file_format:
        if file_format not in FORMATS:
            raise ImportFileError(f"Unknown format {file_format!r}; use one of {', '.join(FORMATS)}.")
        return file_format
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise ImportFileError(
            f"Cannot tell the format of {path.name!r} from its extension; name it .csv, .jsonl or "
            "(.ndjson), or pass the format explicitly."
        )
    return found


@dataclass(frozen=True)
class CsvHeader:
    names: tuple[str, ...]
    first_data_line: int  # line number of the first row after the header
    data_offset: int  # byte offset of that row


def read_csv_header(stream: BinaryIO, *, known: tuple[str, ...], required: tuple[str, ...]) -> CsvHeader:
    """Parse the header row and check its column names (names are trimmed and case-sensitive)."""
    raw = stream.readline()
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
        offset = len(_BOM)
    else:
        offset = 0
    offset += len(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ImportFileError("The header row is not valid UTF-8.") from None
    rows = list(csv.reader([text]))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ImportFileError(f"The file has no header row; the first line must name the columns: {', '.join(known)}.")
    names = tuple(cell.strip() for cell in rows[0])
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ImportFileError(f"Unknown columns {', '.join(map(repr, unknown))}; known columns: {', '.join(known)}.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ImportFileError(f"Columns named more than once: {', '.join(repeated)}.")
    missing = [name for name in required if name not in names]
    if missing:
        raise ImportFileError(f"Required columns missing: {', '.join(missing)}.")
    return CsvHeader(names=names, first_data_line=2, data_offset=offset)


@dataclass(frozen=True)
class ByteBlock:
    """Whole CSV rows: ``data`` starts on line ``first_line`` and ends after a row."""

    first_line: int
    data: bytes
    end_offset: int  # byte offset in the file just after this block


def csv_blocks(stream: BinaryIO, header: CsvHeader, block_bytes: int) -> Iterator[ByteBlock]:
    """The rows after the header, in blocks of about ``block_bytes``.

    A block ends at a line break outside quotes (the number of ``"`` before it is
    even), so a quoted value with line breaks is never cut in two."""
    line = header.first_data_line
    offset = header.data_offset
    pending = b""
    while True:
        chunk = stream.read(block_bytes)
        data = pending + chunk
        if not chunk:
            if data:
                yield ByteBlock(first_line=line, data=data, end_offset=offset + len(data))
            return
        cut = _row_boundary(data)
        if cut == 0 and len(data) < MAX_BLOCK_BYTES:
            pending = data
            continue
        if cut == 0:  # an unclosed quote: give up keeping rows whole; the CSV parser reports it
            cut = data.rfind(b"\n") + 1 or len(data)
        block, pending = data[:cut], data[cut:]
        yield ByteBlock(first_line=line, data=block, end_offset=offset + len(block))
        line += block.count(b"\n")
        offset += len(block)


def _row_boundary(data: bytes) -> int:
    """Index just after the last line break that is outside quotes, or 0."""
    cut = data.rfind(b"\n") + 1
    while cut > 0 and data.count(b'"', 0, cut) % 2:
        cut = data.rfind(b"\n", 0, cut - 1) + 1
    return cut


@dataclass(frozen=True)
class CsvRow:
    line: int
    cells: dict[str, str] | None  # None when the row could not be parsed
    problem: str = ""  # why, when cells is None
    text: str = ""  # the raw row, kept when it could not be parsed


def csv_rows(block: ByteBlock, names: tuple[str, ...]) -> Iterator[CsvRow]:
    """Parse a block with Python's csv module (any quoting, line breaks in values).

    Invalid UTF-8 bytes are kept as lone surrogates (the validators refuse them, so the
    row is rejected and kept, not dropped). Blank lines are skipped. A row with more or
    fewer cells than the header is an unparseable row."""
    text = block.data.decode("utf-8", "surrogateescape")
    reader = csv.reader(_lines(text), strict=False)
    consumed = 0
    while True:
        start = block.first_line + consumed
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            consumed = reader.line_num
            yield CsvRow(
                line=start,
                cells=None,
                problem=f"is not a valid CSV row: {error}",
                text=_line_at(text, start - block.first_line),
            )
            continue
        consumed = reader.line_num
        if not row:
            continue
        if len(row) != len(names):
            yield CsvRow(
                line=start,
                cells=None,
                problem=f"has {len(row)} cells; the header names {len(names)} columns",
                text=",".join(row),
            )
            continue
        yield CsvRow(line=start, cells=dict(zip(names, row, strict=True)))


def _lines(text: str) -> Iterator[str]:
    """Lines split on ``\\n`` only (as the line numbers count them), ends kept."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end == -1:
            yield text[start:]
            return
        yield text[start : end + 1]
        start = end + 1


def _line_at(text: str, index: int) -> str:
    for number, line in enumerate(_lines(text)):
        if number == index:
            return line.rstrip("\r\n")
    return ""


@dataclass(frozen=True)
class JsonLine:
    line: int
    data: bytes


@dataclass(frozen=True)
class JsonLinesBlock:
    lines: list[JsonLine]
    end_offset: int


def jsonl_blocks(stream: BinaryIO, max_lines: int) -> Iterator[JsonLinesBlock]:
    """Non-blank lines, at most ``max_lines`` a block, with their line numbers."""
    number = 0
    offset = 0
    lines: list[JsonLine] = []
    for raw in stream:
        number += 1
        offset += len(raw)
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if not raw.strip():
            continue
        lines.append(JsonLine(line=number, data=raw))
        if len(lines) >= max_lines:
            yield JsonLinesBlock(lines=lines, end_offset=offset)
            lines = []
    if lines or number == 0:
        yield JsonLinesBlock(lines=lines, end_offset=offset)


def line_blocks(stream: BinaryIO, block_bytes: int) -> Iterator[ByteBlock]:
    """Whole lines (a JSON lines file), in blocks of about ``block_bytes`` that end
    after a ``\\n`` (or at the end of the file). A byte order mark at the start of
    the file is left out; line numbers and offsets still count it."""
    line = 1
    offset = 0
    pending = b""
    first = True
    while True:
        chunk = stream.read(block_bytes)
        if first:
            first = False
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
                offset = len(_BOM)
        data = pending + chunk
        if not chunk:
            if data:
                yield ByteBlock(first_line=line, data=data, end_offset=offset + len(data))
            return
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            pending = data
            continue
        block, pending = data[:cut], data[cut:]
        yield ByteBlock(first_line=line, data=block, end_offset=offset + len(block))
        line += block.count(b"\n")
        offset += len(block)


def file_size(path: Path) -> int:
    return path.stat().st_size


def open_binary(path: Path) -> io.BufferedReader:
    try:
        return open(path, "rb")
    except OSError as error:
        raise ImportFileError(f"Cannot open {str(path)!r}: {error.strerror}.") from None

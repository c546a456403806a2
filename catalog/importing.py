"""Importing product and event files (CSV or JSON lines): the services behind the
``import_products`` and ``import_events`` commands and the console's uploads.

Both stream the file (memory stays constant), commit one transaction per batch,
report progress in bytes read, and apply exactly the rules of the API (the
validators of catalog.validation). A bad row never stops an import: it is kept as a
Rejection (source ``import``, with its line number) and counted; the rest is stored.

Idempotent: events are unique by event_id, so importing a file twice (or after an
interruption) adds only what is missing. Products are upserts. Bad rows are kept again
on a rerun.

CSV files have a header row naming the columns. For events: event_id, type, shopper,
sku, ts (required), session, request_id, quantity, price. For products: sku and any of
the product fields; ``tags`` separated by ``|``, ``attributes`` a JSON object, booleans
as true/false (or 1/0, yes/no). An empty cell is a field not sent: an update leaves it
as it is. JSON lines files hold one JSON object per line, exactly as in the API. A product may
appear on several lines of a file: the lines apply in order.
"""

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from django.db import connection, transaction
from django.utils import timezone

from catalog.event_columns import (
    EVENT_COLUMNS,
    REQUIRED_EVENT_COLUMNS,
    bool_mask,
    event_record_from_csv,
    fast_valid,
    jsonl_event_cells,
    valid_events_table,
)
from catalog.event_copy import EventWriter, WriteResult
from catalog.import_files import (
    ByteBlock,
    ImportFileError,
    csv_blocks,
    csv_rows,
    detect_format,
    jsonl_blocks,
    line_blocks,
    open_binary,
    read_csv_header,
)
from catalog.json_input import JsonInputError, parse_json
from catalog.models import Rejection, Shop
from catalog.services import products_upsert, rejections_keep
from catalog.validation import PRODUCT_FIELDS, Problem, ValidEvent, storable_name, validate_event

__all__ = ["ImportFileError", "ImportResult", "import_events", "import_products"]

EVENT_BLOCK_BYTES = 8 * 1024 * 1024  # about 100,000 events of a typical CSV
PRODUCTS_PER_BATCH = 500
PRODUCT_CSV_BYTES = 1024 * 1024
# Postgres connections storing batches while the next ones are read (2 cores: one
# process validates, the database works on two batches).
WRITER_THREADS = 2
# Imports that add at least this many rows refresh the planner statistics (Postgres).
ANALYZE_AFTER_ROWS = 10_000

PROBLEMS_SAMPLE_SIZE = 20

ProgressCallback = Callable[[int], None]


@dataclass
class ImportResult:
    rows_read: int = 0
    accepted: int = 0  # events: new rows; products: created or changed
    unchanged: int = 0  # events: duplicates of a stored event_id; products: sent as stored
    rejected: int = 0  # rows kept as Rejection
    unknown_skus: int = 0  # events kept without a product
    seconds: float = 0.0
    # The first problems found, as (line, "field reason"), for a report; all of them are
    # kept as Rejection rows.
    problems_sample: list[tuple[int, str]] = field(default_factory=list)

    def note_problems(self, line: int, problems: list[Problem]) -> None:
        for problem in problems:
            if len(self.problems_sample) < PROBLEMS_SAMPLE_SIZE:
                self.problems_sample.append((line, describe_problem(problem)))

    @property
    def duplicates(self) -> int:
        return self.unchanged

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _RejectedRow:
    line: int
    record: Any  # the record as read: cells of a CSV row, a JSON value, or raw text
    problems: list[Problem]


@dataclass
class _EventBatch:
    rows_read: int
    clean: pa.Table
    rejected: list[_RejectedRow]
    end_offset: int


# --- events ------------------------------------------------------------------------------


def import_events(
    *,
    shop: Shop,
    path: Path,
    file_format: str | None = None,
    on_progress: ProgressCallback | None = None,
    block_bytes: int = EVENT_BLOCK_BYTES,
    writers: int | None = None,
) -> ImportResult:
    """Import an event file into ``shop``; see the module docstring for the formats.

    Raises ImportFileError (before storing anything) for a file that cannot be read as
    a whole: unknown format, a CSV header with missing, unknown or repeated columns.

    Each batch is one transaction. On Postgres, outside a transaction, ``writers``
    threads (default WRITER_THREADS, each with its own connection) store batches while
    the next ones are read and validated; inside a transaction everything runs in it.
    Concurrent batches cannot deadlock: each inserts in event_id order.
    """
    started = time.perf_counter()
    path = Path(path)
    fmt = detect_format(path, file_format)
    if writers is None:
        writers = WRITER_THREADS if connection.vendor == "postgresql" else 1
    if connection.in_atomic_block:
        writers = 1
    result = ImportResult()
    writer = EventWriter(shop)
    progress = _Progress(on_progress)

    def store(batch: _EventBatch) -> tuple[_EventBatch, WriteResult]:
        writer.create_shoppers(batch.clean)
        with transaction.atomic():
            written = writer.write(batch.clean)
            _keep_rejected(shop, Rejection.Kind.EVENT, "event_id", batch.rejected)
        return batch, written

    def record(batch: _EventBatch, written: WriteResult) -> None:
        result.rows_read += batch.rows_read
        result.accepted += written.inserted
        result.unchanged += written.duplicates
        result.unknown_skus += written.unknown_skus
        result.rejected += len(batch.rejected)
        for row in batch.rejected:
            result.note_problems(row.line, row.problems)
        progress.done(batch.end_offset)

    with open_binary(path) as stream:
        read = _csv_event_batches if fmt == "csv" else _jsonl_event_batches
        batches = read(stream, block_bytes)
        if writers == 1:
            for batch in batches:
                progress.started(batch.end_offset)
                record(*store(batch))
        else:
            _store_in_threads(batches, store, record, progress, writers)
    _refresh_planner_statistics(result.accepted, ("catalog_event", "catalog_shopper"))
    result.seconds = time.perf_counter() - started
    return result


def _refresh_planner_statistics(rows_added: int, tables: tuple[str, ...]) -> None:
    """ANALYZE after a big import on Postgres: without fresh statistics (autovacuum may
    lag or be off) the planner picks bad plans for the console's and serving's queries."""
    if connection.vendor != "postgresql" or rows_added < ANALYZE_AFTER_ROWS:
        return
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")


class _Progress:
    """Reports the end of the longest run of stored batches from the start of the file."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.pending: list[int] = []
        self.finished: set[int] = set()

    def started(self, end_offset: int) -> None:
        self.pending.append(end_offset)

    def done(self, end_offset: int) -> None:
        self.finished.add(end_offset)
        reached = None
        while self.pending and self.pending[0] in self.finished:
            reached = self.pending.pop(0)
            self.finished.discard(reached)
        if reached is not None and self.callback is not None:
            self.callback(reached)


def _store_in_threads(
    batches: Iterator[_EventBatch],
    store: Callable[[_EventBatch], tuple[_EventBatch, WriteResult]],
    record: Callable[[_EventBatch, WriteResult], None],
    progress: _Progress,
    threads: int,
) -> None:
    """Store batches in ``threads`` worker threads, each on its own database connection
    (kept for the whole import: a connection a batch would cost a new server process
    each time), while this thread reads and validates the next batches."""
    in_flight: list[Future[tuple[_EventBatch, WriteResult]]] = []
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="import-events") as pool:
        try:
            for batch in batches:
                progress.started(batch.end_offset)
                in_flight.append(pool.submit(store, batch))
                if len(in_flight) >= threads:
                    finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in finished:
                        in_flight.remove(future)
                        record(*future.result())
            for future in in_flight:
                record(*future.result())
        except BaseException:
            for future in in_flight:
                future.cancel()
            raise
        finally:
            _close_thread_connections(pool, threads)


def _close_thread_connections(pool: ThreadPoolExecutor, threads: int) -> None:
    """Close the database connection of each of the pool's threads (Django's
    connections are per thread): one task a thread, held at a barrier until every
    thread has one."""
    barrier = threading.Barrier(threads)

    def close() -> None:
        try:
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            pass
        finally:
            connection.close()

    for future in [pool.submit(close) for _ in range(threads)]:
        future.result()


def _csv_event_batches(stream: Any, block_bytes: int) -> Iterator[_EventBatch]:
    header = read_csv_header(stream, known=EVENT_COLUMNS, required=REQUIRED_EVENT_COLUMNS)
    for block in csv_blocks(stream, header, block_bytes):
        now = timezone.now()
        parsed = _arrow_cells(block, header.names)
        if parsed is None:
            yield _events_row_by_row(block, header.names, now)
            continue
        cells, lines = parsed
        ok, clean = fast_valid(cells, lines, now)
        slow_index = np.flatnonzero(~ok)
        rejected: list[_RejectedRow] = []
        if len(slow_index):
            slow_rows = cells.take(pa.array(slow_index)).to_pylist()
            events: list[ValidEvent] = []
            event_lines: list[int] = []
            for index, row in zip(slow_index.tolist(), slow_rows, strict=True):
                checked = validate_event(event_record_from_csv(row), now=now)
                if isinstance(checked, ValidEvent):
                    events.append(checked)
                    event_lines.append(int(lines[index]))
                else:
                    rejected.append(_RejectedRow(int(lines[index]), row, checked))
            if events:
                clean = pa.concat_tables([clean, valid_events_table(events, event_lines)])
        yield _EventBatch(rows_read=cells.num_rows, clean=clean, rejected=rejected, end_offset=block.end_offset)


def _arrow_cells(block: ByteBlock, names: tuple[str, ...]) -> tuple[pa.Table, np.ndarray] | None:
    """The block's cells parsed by pyarrow's CSV reader, with the line each row starts
    on; or None when the block needs the careful parser (csv_rows): a lone carriage
    return, a blank line, bytes that are not UTF-8, or a row pyarrow cannot parse (the
    wrong number of cells, an unclosed quote).

    Both parsers read quoting the same way (RFC 4180, quoted values may hold line
    breaks; tests/catalog/test_importing.py holds them to it on malformed quoting too),
    so the cells are the same whichever reads the block."""
    data = block.data
    if data.count(b"\r") != data.count(b"\r\n"):
        return None
    if data.startswith((b"\n", b"\r\n")) or b"\n\n" in data or b"\n\r\n" in data:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(column_names=list(names), use_threads=True),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if table.num_rows == 0:
        return None
    # A row takes one line, plus one for each line break inside its quoted values.
    extra = np.zeros(table.num_rows, dtype=np.int64)
    if b'"' in data:
        for column in table.columns:
            extra += np.asarray(pc.count_substring(column, "\n").to_numpy(zero_copy_only=False), dtype=np.int64)
    lines_used = table.num_rows + int(extra.sum())
    if lines_used != data.count(b"\n") + (0 if data.endswith(b"\n") else 1):
        return None
    starts = block.first_line + np.arange(table.num_rows, dtype=np.int64) + np.concatenate(([0], np.cumsum(extra)[:-1]))
    return table, starts


def _events_row_by_row(block: ByteBlock, names: tuple[str, ...], now: Any) -> _EventBatch:
    events: list[ValidEvent] = []
    lines: list[int] = []
    rejected: list[_RejectedRow] = []
    rows_read = 0
    for row in csv_rows(block, names):
        rows_read += 1
        if row.cells is None:
            rejected.append(_RejectedRow(row.line, row.text, [Problem("", row.problem)]))
            continue
        checked = validate_event(event_record_from_csv(row.cells), now=now)
        if isinstance(checked, ValidEvent):
            events.append(checked)
            lines.append(row.line)
        else:
            rejected.append(_RejectedRow(row.line, row.cells, checked))
    return _EventBatch(rows_read, valid_events_table(events, lines), rejected, block.end_offset)


def _jsonl_event_batches(stream: Any, block_bytes: int) -> Iterator[_EventBatch]:
    """Blocks of JSON lines, validated like CSV blocks: the lines of a simple shape
    (catalog.event_columns.jsonl_event_cells) a column at a time, the rest one by one
    with parse_json and validate_event."""
    for block in line_blocks(stream, block_bytes):
        now = timezone.now()
        lines = pc.list_flatten(pc.split_pattern(pa.array([block.data], pa.binary()), b"\n"))
        numbers = block.first_line + np.arange(len(lines), dtype=np.int64)
        written = np.flatnonzero(~bool_mask(pc.match_substring_regex(lines, r"^[ \t\n\r\x0b\x0c]*$")))
        lines, numbers = lines.take(pa.array(written)), numbers[written]
        shaped, cells = jsonl_event_cells(lines)
        ok, clean = fast_valid(cells, numbers[shaped], now)
        careful = np.ones(len(lines), dtype=bool)
        careful[shaped[ok]] = False
        events: list[ValidEvent] = []
        event_lines: list[int] = []
        rejected: list[_RejectedRow] = []
        index = np.flatnonzero(careful)
        for number, data in zip(numbers[index].tolist(), lines.take(pa.array(index)).to_pylist(), strict=True):
            try:
                record = parse_json(data)
            except JsonInputError as error:
                text = data.decode("utf-8", "backslashreplace").rstrip("\r\n")
                rejected.append(_RejectedRow(number, text, [Problem("", error.message)]))
                continue
            checked = validate_event(record, now=now)
            if isinstance(checked, ValidEvent):
                events.append(checked)
                event_lines.append(number)
            else:
                rejected.append(_RejectedRow(number, record, checked))
        if events:
            clean = pa.concat_tables([clean, valid_events_table(events, event_lines)])
        yield _EventBatch(len(lines), clean, rejected, block.end_offset)


def _keep_rejected(shop: Shop, kind: str, id_key: str, rows: list[_RejectedRow]) -> None:
    if rows:
        rejections_keep(
            shop=shop,
            kind=kind,
            source=Rejection.Source.IMPORT,
            records=[row.record for row in rows],
            problems_by_index={index: row.problems for index, row in enumerate(rows)},
            id_key=id_key,
            lines=[row.line for row in rows],
        )


# --- products ----------------------------------------------------------------------------

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
_BOOLEAN_FIELDS = frozenset({"in_stock", "active"})


def product_record_from_csv(cells: dict[str, str]) -> tuple[dict[str, Any], list[Problem]]:
    """A CSV row as the record validate_product checks, and problems of cells that
    cannot even be turned into a value (attributes that are not JSON)."""
    record: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, text in cells.items():
        if text == "":
            continue
        if name == "tags":
            record[name] = [tag.strip() for tag in text.split("|") if tag.strip()]
        elif name == "attributes":
            try:
                record[name] = parse_json(text)
            except JsonInputError as error:
                problems.append(Problem("attributes", f"must be a JSON object; the cell is not JSON ({error.code})"))
        elif name in _BOOLEAN_FIELDS and text.strip().lower() in _TRUE | _FALSE:
            record[name] = text.strip().lower() in _TRUE
        else:
            record[name] = text
    return record, problems


def import_products(
    *,
    shop: Shop,
    path: Path,
    file_format: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Upsert the products of a file into ``shop`` (catalog.services.products_upsert,
    a batch at a time); see the module docstring for the formats."""
    started = time.perf_counter()
    path = Path(path)
    fmt = detect_format(path, file_format)
    result = ImportResult()
    with open_binary(path) as stream:
        batches = _csv_product_batches(stream) if fmt == "csv" else _jsonl_product_batches(stream)
        for records, lines, unreadable, end_offset in batches:
            with transaction.atomic():
                upserted = products_upsert(shop=shop, records=records, source=Rejection.Source.IMPORT, lines=lines)
                _keep_rejected(shop, Rejection.Kind.PRODUCT, "sku", unreadable)
            result.rows_read += len(records) + len(unreadable)
            result.accepted += upserted.created + upserted.updated
            result.unchanged += upserted.unchanged
            result.rejected += len({r.index for r in upserted.rejected}) + len(unreadable)
            for rejection in upserted.rejected:
                result.note_problems(lines[rejection.index], [Problem(rejection.field, rejection.reason)])
            for row in unreadable:
                result.note_problems(row.line, row.problems)
            if on_progress is not None:
                on_progress(end_offset)
    result.seconds = time.perf_counter() - started
    return result


_ProductBatch = tuple[list[Any], list[int], list[_RejectedRow], int]


class _ProductBatcher:
    """Collects product records into batches for products_upsert. A SKU that comes again
    starts a new batch, so a file may update a product on a later line (the lines apply
    in file order; the API refuses a SKU twice in one request)."""

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.lines: list[int] = []
        self.unreadable: list[_RejectedRow] = []
        self.skus: set[str] = set()

    def add(self, record: Any, line: int) -> bool:
        """Add a record; True when the batch was full or the SKU repeated, and the
        record was not added (take the batch, then add it again)."""
        sku = record.get("sku") if isinstance(record, dict) else None
        key = sku.strip() if isinstance(sku, str) else None
        if len(self.records) >= PRODUCTS_PER_BATCH or (key is not None and key in self.skus):
            return True
        self.records.append(record)
        self.lines.append(line)
        if key is not None:
            self.skus.add(key)
        return False

    def take(self, end_offset: int) -> "_ProductBatch":
        batch = (self.records, self.lines, self.unreadable, end_offset)
        self.records, self.lines, self.unreadable, self.skus = [], [], [], set()
        return batch

    def __bool__(self) -> bool:
        return bool(self.records or self.unreadable)


def _csv_product_batches(stream: Any) -> Iterator[_ProductBatch]:
    header = read_csv_header(stream, known=PRODUCT_FIELDS, required=("sku",))
    batcher = _ProductBatcher()
    for block in csv_blocks(stream, header, PRODUCT_CSV_BYTES):
        for row in csv_rows(block, header.names):
            if row.cells is None:
                batcher.unreadable.append(_RejectedRow(row.line, row.text, [Problem("", row.problem)]))
                continue
            record, problems = product_record_from_csv(row.cells)
            if problems:
                batcher.unreadable.append(_RejectedRow(row.line, row.cells, problems))
                continue
            if batcher.add(record, row.line):
                yield batcher.take(block.end_offset)
                batcher.add(record, row.line)
        if batcher:
            yield batcher.take(block.end_offset)


def _jsonl_product_batches(stream: Any) -> Iterator[_ProductBatch]:
    batcher = _ProductBatcher()
    for block in jsonl_blocks(stream, PRODUCTS_PER_BATCH):
        for line in block.lines:
            try:
                record = parse_json(line.data)
            except JsonInputError as error:
                text = line.data.decode("utf-8", "backslashreplace").rstrip("\r\n")
                batcher.unreadable.append(_RejectedRow(line.line, text, [Problem("", error.message)]))
                continue
            if batcher.add(record, line.line):
                yield batcher.take(block.end_offset)
                batcher.add(record, line.line)
        if batcher:
            yield batcher.take(block.end_offset)


def describe_problem(problem: Problem) -> str:
    return f"{storable_name(problem.field)} {problem.reason}".strip()

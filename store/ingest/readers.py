"""Read export files into raw records, turning file-level problems into per-record errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.ingest.records import IngestLimits, record_label

LIST_KEYS = {"help-center": "articles", "tickets": "tickets", "macros": "macros"}
# The List User Segments API's shape (`{"user_segments": [...]}`), kept beside an article export.
USER_SEGMENTS_FILE = "user_segments.json"


@dataclass(frozen=True)
class RawRecord:
    """One input record, or the reason it could not even be read.

    `fatal` marks a failure that hides an unknown number of records (an unreadable file): the
    ingest then must not delete documents it did not see, since they may still exist."""

    ref: str
    raw: Any = None
    error: str | None = None
    fatal: bool = False
    rel_path: str = ""


def _decode(data: bytes) -> str:
    # surrogateescape keeps undecodable bytes as lone surrogates, so one bad record can be
    # reported on its own instead of failing the whole file.
    return data.decode("utf-8", errors="surrogateescape")


def _export_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.suffix in {".json", ".jsonl", ".ndjson"} and p.is_file() and p.name != USER_SEGMENTS_FILE
        )
        return files
    return [path]


def read_export(path: str | Path, source: str, limits: IngestLimits | None = None) -> Iterator[RawRecord]:
    """Records of a Zendesk JSON export: `{"<list key>": [...]}` files, bare lists, or JSON Lines."""
    lim = limits or IngestLimits()
    key = LIST_KEYS[source]
    root = Path(path)
    if not root.exists():
        yield RawRecord(str(root), error="path does not exist", fatal=True)
        return
    files = _export_files(root)
    if not files:
        yield RawRecord(str(root), error="no .json/.jsonl files found", fatal=True)
        return
    for file in files:
        try:
            size = file.stat().st_size
            if size > lim.max_file_bytes:
                yield RawRecord(
                    str(file),
                    error=f"file is {size:,} bytes; the limit is {lim.max_file_bytes:,}",
                    fatal=True,
                )
                continue
            text = _decode(file.read_bytes())
        except OSError as exc:
            yield RawRecord(str(file), error=f"cannot read: {exc.strerror or exc}", fatal=True)
            continue
        if file.suffix in {".jsonl", ".ndjson"}:
            yield from _read_lines(file, text, key)
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RawRecord(
                str(file),
                error=f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                fatal=True,
            )
            continue
        items = data.get(key) if isinstance(data, dict) else data
        if not isinstance(items, list):
            yield RawRecord(
                str(file), error=f"expected a list under {key!r} (Zendesk export format)", fatal=True
            )
            continue
        for i, item in enumerate(items):
            yield RawRecord(_ref(file.name, i, item), raw=item)


def _read_lines(file: Path, text: str, key: str) -> Iterator[RawRecord]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        ref = f"{file.name}:{lineno}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RawRecord(ref, error=f"malformed JSON: {exc.msg} (column {exc.colno})")
            continue
        # A line may hold one record or one exported page ({"tickets": [...]}).
        if isinstance(item, dict) and isinstance(item.get(key), list):
            for i, sub in enumerate(item[key]):
                yield RawRecord(_ref(f"{file.name}:{lineno}", i, sub), raw=sub)
        else:
            yield RawRecord(_ref(ref, None, item), raw=item)


def _ref(prefix: str, index: int | None, item: Any) -> str:
    rid = record_label(item)
    where = prefix if index is None else f"{prefix} record #{index}"
    return f"{where} (id {rid})" if rid else where


def read_user_segments(path: str | Path) -> dict[str, dict[str, Any]]:
    """User segments by id from `user_segments.json` beside an article export (or in its folder);
    {} when there is none — articles restricted to a segment are then shown to nobody."""
    root = Path(path)
    file = (root if root.is_dir() else root.parent) / USER_SEGMENTS_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    items = data.get("user_segments") if isinstance(data, dict) else data
    return {
        str(s["id"]): s
        for s in items or []
        if isinstance(s, dict) and isinstance(s.get("id"), int | str) and not isinstance(s.get("id"), bool)
    }


def read_markdown_dir(path: str | Path, limits: IngestLimits | None = None) -> Iterator[RawRecord]:
    lim = limits or IngestLimits()
    root = Path(path)
    if not root.is_dir():
        yield RawRecord(str(root), error="not a directory of Markdown files", fatal=True)
        return
    for file in sorted(
        p for p in root.rglob("*") if p.suffix.lower() in {".md", ".markdown"} and p.is_file()
    ):
        rel = file.relative_to(root).as_posix()
        try:
            size = file.stat().st_size
            if size > lim.max_markdown_bytes:
                yield RawRecord(
                    rel,
                    error=f"file is {size:,} bytes; the limit is {lim.max_markdown_bytes:,}",
                    rel_path=rel,
                )
                continue
            yield RawRecord(rel, raw=_decode(file.read_bytes()), rel_path=rel)
        except OSError as exc:
            yield RawRecord(rel, error=f"cannot read: {exc.strerror or exc}", fatal=True, rel_path=rel)

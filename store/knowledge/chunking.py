"""Turn a document body (HTML, Markdown or text) into overlapping, heading-aware chunks.

Chunks follow the document's structure: a heading starts a new section, paragraphs are packed
into chunks of at most `max_chars`, and the last paragraph of one chunk is repeated at the start
of the next (overlap) so an answer split across a boundary is still found whole. Each chunk
starts with its heading path, so it reads on its own in a citation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bs4 import BeautifulSoup, NavigableString, Tag
from markdown_it import MarkdownIt

_BLOCK_TAGS = {"p", "li", "pre", "blockquote", "td", "th", "dt", "dd", "figcaption", "div", "section"}
_HEADING_TAGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_DROP_TAGS = {"script", "style", "noscript", "template", "iframe", "svg", "head"}
_WS_RE = re.compile(r"[ \t\r\f\v\u00a0]+")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class ChunkerConfig:
    max_chars: int = 1200
    overlap_chars: int = 200
    min_chars: int = 40
    max_chunks_per_document: int = 400

    def __post_init__(self) -> None:
        if not 100 <= self.max_chars <= 20_000:
            raise ValueError("max_chars must be within 100..20000")
        if not 0 <= self.overlap_chars < self.max_chars // 2:
            raise ValueError("overlap_chars must be >= 0 and below max_chars / 2")
        if self.max_chunks_per_document < 1:
            raise ValueError("max_chunks_per_document must be positive")


@dataclass(frozen=True)
class Block:
    text: str
    heading_level: int = 0  # 0 for body text


class DocumentTooLargeError(ValueError):
    pass


def _clean(text: str) -> str:
    lines = [_WS_RE.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def html_blocks(html: str) -> list[Block]:
    """Headings and text blocks of an HTML fragment, in document order."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    blocks: list[Block] = []
    pending: list[str] = []  # inline text outside any block element

    def flush_pending() -> None:
        text = _clean("".join(pending))
        pending.clear()
        if text:
            blocks.append(Block(text))

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if child.__class__ is NavigableString:  # skip comments, CDATA, doctype
                    pending.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name.lower()
            if name == "table":
                flush_pending()
                blocks.extend(Block(row) for row in table_rows(child))
            elif name in _HEADING_TAGS:
                flush_pending()
                text = _clean(child.get_text())
                if text:
                    blocks.append(Block(text, _HEADING_TAGS[name]))
            elif name in _BLOCK_TAGS or name in {"ul", "ol", "table", "tr", "dl", "article", "main"}:
                flush_pending()
                has_block_children = any(
                    isinstance(c, Tag)
                    and (
                        c.name in _BLOCK_TAGS
                        or c.name in _HEADING_TAGS
                        or c.name in {"ul", "ol", "table", "tr"}
                    )
                    for c in child.children
                )
                if has_block_children:
                    walk(child)
                    flush_pending()
                else:
                    text = _clean(child.get_text())
                    if text:
                        blocks.append(Block(f"- {text}" if name == "li" else text))
            else:
                walk(child)  # inline element: its text joins the surrounding paragraph

    walk(soup)
    flush_pending()
    return blocks


_CELL_TAGS = ("td", "th")
_PAIR_SEP = " — "


def _cell_text(cell: Tag) -> str:
    return " ".join(_clean(cell.get_text(" ")).split())


def _own_rows(table: Tag) -> list[Tag]:
    """The table's rows (through thead/tbody/tfoot), not those of a table nested in a cell."""
    return [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]


def _expanded(row: Tag) -> list[tuple[str, bool]]:
    """(text, is_header) per column: a cell spanning n columns fills all n."""
    out: list[tuple[str, bool]] = []
    for cell in row.find_all(_CELL_TAGS, recursive=False):
        try:
            span = max(1, min(int(str(cell.get("colspan", 1))), 50))
        except ValueError:
            span = 1
        text = _cell_text(cell)
        out.append((text, cell.name == "th"))
        out.extend(("", False) for _ in range(span - 1))  # spanned columns say nothing more
    return out


def table_rows(table: Tag) -> list[str]:
    """One self-contained line per body row: "Header: cell — Header: cell."

    Flattened cells ("Paid withMoney back…iDEAL5–7 days") answer nothing; a row that names its
    columns reads as a sentence on its own, so a retriever or a sentence splitter can quote it
    alone. The row ends in sentence punctuation so a splitter keeps it whole.
    """
    rows = [_expanded(tr) for tr in _own_rows(table)]
    rows = [r for r in rows if any(text for text, _ in r)]
    if not rows:
        return []
    headers: list[str] = []
    # A header row: in <thead>, or the first row when every cell is a <th>.
    first_tr = _own_rows(table)[0]
    if first_tr.find_parent("thead") is not None or all(is_th for _, is_th in rows[0]):
        headers = [text for text, _ in rows[0]]
        rows = rows[1:]
    lines: list[str] = []
    for row in rows:
        parts: list[str] = []
        for i, (text, _) in enumerate(row):
            if not text:
                continue
            header = headers[i] if i < len(headers) else ""
            parts.append(f"{header}: {text}" if header and header != text else text)
        if not parts:
            continue
        line = _PAIR_SEP.join(parts)
        lines.append(line if re.search(r"[.!?]$", line) else f"{line}.")
    if not lines and headers:  # a header-only table still says something
        lines.append(_PAIR_SEP.join(h for h in headers if h) + ".")
    return lines


_MD = MarkdownIt("commonmark").enable("table")


def markdown_blocks(markdown: str) -> list[Block]:
    return html_blocks(_MD.render(markdown))


def text_blocks(text: str) -> list[Block]:
    return [Block(p) for p in (_clean(part) for part in re.split(r"\n\s*\n", text)) if p]


def blocks_for(body: str, body_format: str) -> list[Block]:
    if body_format == "html":
        return html_blocks(body)
    if body_format == "markdown":
        return markdown_blocks(body)
    return text_blocks(body)


def html_to_text(html: str) -> str:
    return "\n\n".join(b.text for b in html_blocks(html))


def _split_long(text: str, max_chars: int) -> list[str]:
    """Split one over-long paragraph at sentence ends, then hard at max_chars."""
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_RE.split(text):
        while len(sentence) > max_chars:
            if current:
                pieces.append(current)
                current = ""
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > max_chars:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return pieces


def chunk_document(title: str, body: str, body_format: str, config: ChunkerConfig | None = None) -> list[str]:
    """Chunk texts of one document, in order. Never returns an empty list for a titled document."""
    cfg = config or ChunkerConfig()
    blocks = blocks_for(body, body_format)
    sections: list[tuple[list[str], list[str]]] = []  # (heading path, paragraphs)
    path: list[tuple[int, str]] = []
    paragraphs: list[str] = []

    def close_section() -> None:
        if paragraphs:
            sections.append(([h for _, h in path], list(paragraphs)))
            paragraphs.clear()

    for block in blocks:
        if block.heading_level:
            close_section()
            path = [(lvl, h) for lvl, h in path if lvl < block.heading_level]
            path.append((block.heading_level, block.text))
        else:
            paragraphs.extend(_split_long(block.text, cfg.max_chars - cfg.overlap_chars))
    close_section()

    chunks: list[str] = []
    for headings, paras in sections:
        # The title is not repeated when the document's own H1 already says it.
        prefix_parts = [h for h in headings if h.strip().lower() != title.strip().lower()]
        prefix = " > ".join(prefix_parts)
        budget = cfg.max_chars - len(prefix) - 1 if prefix else cfg.max_chars
        budget = max(budget, cfg.max_chars // 2)
        current: list[str] = []
        size = 0
        for para in paras:
            if current and size + len(para) + 1 > budget:
                chunks.append(_join(prefix, current))
                tail = current[-1]
                # Overlap: carry the previous paragraph (or its end) into the next chunk.
                carry = (
                    tail if len(tail) <= cfg.overlap_chars else tail[-cfg.overlap_chars :].split(" ", 1)[-1]
                )
                current, size = ([carry], len(carry)) if cfg.overlap_chars else ([], 0)
            current.append(para)
            size += len(para) + 1
        if current:
            chunks.append(_join(prefix, current))
        if len(chunks) > cfg.max_chunks_per_document:
            raise DocumentTooLargeError(
                f"document splits into more than {cfg.max_chunks_per_document} chunks"
            )
    # Tiny trailing chunks merge into their predecessor rather than becoming noise hits.
    merged: list[str] = []
    for chunk in chunks:
        if merged and len(chunk) < cfg.min_chars and len(merged[-1]) + len(chunk) + 1 <= cfg.max_chars * 1.25:
            merged[-1] = f"{merged[-1]}\n{chunk}"
        else:
            merged.append(chunk)
    if not merged and title.strip():
        merged = [title.strip()]
    return merged


def _join(prefix: str, paras: list[str]) -> str:
    body = "\n".join(paras)
    return f"{prefix}\n{body}" if prefix else body

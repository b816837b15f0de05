"""A small document store with a BM25 index, and a ReAct-style browser over it (Search / Lookup).

Pages come from JSONL files (``{"title", "sentences"}``, ``{"title", "text"}`` or HotpotQA items with a
``context``), from ``Page`` values, or from one HotpotQA item's context. No dependencies beyond the
standard library.
"""
from __future__ import annotations

import json
import math
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

K1 = 1.5
B = 0.75
SIMILAR = 5            # titles listed after a failed search
SUMMARY_SENTENCES = 5  # sentences returned by a successful search
SUMMARY_CHARS = 600    # ... at most this many characters


class DocStoreError(ValueError):
    """A document file that cannot be read as pages; the message starts with ``path:line:``."""


@dataclass(frozen=True)
class Page:
    """One page: a title and its sentences (stripped, non-empty)."""

    title: str
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def normalize_title(title: str) -> str:
    """The key titles are matched by: case-folded, whitespace runs collapsed, ends stripped."""
    return " ".join(title.split()).casefold()


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens, accents folded (``Rhône`` -> ``rhone``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.findall(r"\w+", folded)


_ABBREVIATIONS = frozenset("mr mrs ms dr prof st jr sr vs etc inc ltd co no fig approx".split())
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9À-Þ])")


def split_sentences(text: str) -> tuple[str, ...]:
    """Sentences of plain text: splits after ``.``/``!``/``?`` followed by a capital or a digit, except
    after a single-letter initial (``I. M. Pei``) or a common abbreviation (``Dr.``, ``St.``)."""
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        words = text[start:match.start()].split()
        last = words[-1].rstrip(".!?").casefold() if words else ""
        if len(last) == 1 and last.isalpha() or last in _ABBREVIATIONS:
            continue
        pieces.append(text[start:match.end()])
        start = match.end()
    pieces.append(text[start:])
    return tuple(p.strip() for p in pieces if p.strip())


def make_page(title: str, sentences: Iterable[str]) -> Page:
    """A Page with a stripped title and its stripped, non-empty sentences."""
    return Page(" ".join(title.split()), tuple(s.strip() for s in sentences if s.strip()))


class DocStore:
    """Pages with a BM25 index (k1=1.5, b=0.75) over each page's title and text.

    Titles are unique up to ``normalize_title``: of pages with the same title the first is kept."""

    def __init__(self, pages: Iterable[Page] = ()):
        self._pages: dict[str, Page] = {}
        for page in pages:
            self._pages.setdefault(normalize_title(page.title), page)
        self._index()

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_pages(cls, pages: Iterable[Page]) -> "DocStore":
        return cls(pages)

    @classmethod
    def from_context(cls, context, where: str = "context") -> "DocStore":
        """The store of one HotpotQA item's ``context``: ``[[title, [sentence, ...]], ...]``.
        Raises DocStoreError for another shape, its message starting with ``where``."""
        return cls(_context_pages(context, where))

    @classmethod
    def from_jsonl(cls, path) -> "DocStore":
        """One store from a JSONL file whose lines are ``{"title", "sentences": [...]}``,
        ``{"title", "text": "..."}`` or HotpotQA items (every item's context paragraphs go in).
        Blank lines are skipped. Raises DocStoreError (``path:line: message``) for an unreadable file,
        a line that is not JSON or has neither a title nor a context, and a file without pages."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise DocStoreError(f"{path}: cannot read the document file: {err}") from None
        pages = [page for number, line in enumerate(lines, 1) if line.strip()
                 for page in _line_pages(line, f"{path}:{number}")]
        if not pages:
            raise DocStoreError(f"{path}: no pages in the document file")
        return cls(pages)

    def _index(self) -> None:
        self._postings: dict[str, list[tuple[int, int]]] = {}
        self._titles = [page.title for page in self._pages.values()]
        self._lengths = []
        for doc, page in enumerate(self._pages.values()):
            counts = Counter(tokenize(page.title + " " + page.text))
            self._lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                self._postings.setdefault(term, []).append((doc, tf))
        self._average = sum(self._lengths) / len(self._lengths) if self._lengths else 0.0

    # -- queries -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._pages)

    def __contains__(self, title: str) -> bool:
        return normalize_title(title) in self._pages

    def __iter__(self):
        return iter(self._pages.values())

    @property
    def titles(self) -> tuple[str, ...]:
        return tuple(self._titles)

    def get(self, title: str) -> Optional[Page]:
        """The page whose title matches ``title`` up to case and whitespace, or None."""
        return self._pages.get(normalize_title(title))

    def rank(self, query: str, k: int = SIMILAR) -> list[tuple[str, float]]:
        """The ``k`` best (title, BM25 score) pairs for ``query``, best first; only positive scores;
        ties keep store order."""
        scores: dict[int, float] = {}
        n = len(self._titles)
        for term in dict.fromkeys(tokenize(query)):
            postings = self._postings.get(term, ())
            idf = math.log(1 + (n - len(postings) + 0.5) / (len(postings) + 0.5))
            for doc, tf in postings:
                norm = K1 * (1 - B + B * self._lengths[doc] / self._average)
                scores[doc] = scores.get(doc, 0.0) + idf * tf * (K1 + 1) / (tf + norm)
        best = sorted((doc for doc in scores if scores[doc] > 0), key=lambda d: (-scores[d], d))
        return [(self._titles[doc], scores[doc]) for doc in best[:k]]


def _line_pages(line: str, where: str) -> list[Page]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as err:
        raise DocStoreError(f"{where}: not JSON: {err.msg} (column {err.colno})") from None
    if not isinstance(item, dict):
        raise DocStoreError(f"{where}: expected a JSON object, got {type(item).__name__}")
    if "context" in item:
        return _context_pages(item["context"], where)
    if "title" in item:
        return [_item_page(item, where)]
    raise DocStoreError(f"{where}: a line needs 'title' (with 'sentences' or 'text') or a HotpotQA 'context'")


def _item_page(item: dict, where: str) -> Page:
    title, sentences, text = item["title"], item.get("sentences"), item.get("text")
    if not isinstance(title, str) or not title.strip():
        raise DocStoreError(f"{where}: 'title' must be a non-empty string")
    if sentences is not None:
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            raise DocStoreError(f"{where}: 'sentences' must be a list of strings")
        return make_page(title, sentences)
    if isinstance(text, str):
        return make_page(title, split_sentences(text))
    raise DocStoreError(f"{where}: page {title!r} needs 'sentences' (a list of strings) or 'text' (a string)")


def _context_pages(context, where: str) -> list[Page]:
    if not isinstance(context, list):
        raise DocStoreError(f"{where}: 'context' must be a list of [title, [sentence, ...]] pairs")
    pages = []
    for i, pair in enumerate(context):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)
                and isinstance(pair[1], list) and all(isinstance(s, str) for s in pair[1])):
            raise DocStoreError(f"{where}: context entry {i} is not a [title, [sentence, ...]] pair")
        pages.append(make_page(pair[0], pair[1]))
    return pages


def summary(page: Page, sentences: int = SUMMARY_SENTENCES, limit: int = SUMMARY_CHARS) -> str:
    """The page's first ``sentences`` sentences joined by spaces, cut at the last sentence boundary
    within ``limit`` characters (or, when the first sentence alone is longer, at a word boundary with
    an ellipsis)."""
    text = ""
    for sentence in page.sentences[:sentences]:
        joined = f"{text} {sentence}" if text else sentence
        if len(joined) > limit:
            break
        text = joined
    if text or not page.sentences:
        return text or f"The page {page.title} is empty."
    cut = page.sentences[0][:limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"


class Browser:
    """Per-episode browsing state with the semantics of the ReAct paper's Wikipedia environment.

    ``search`` opens a page by exact title (or lists similar titles, keeping the current page);
    ``lookup`` steps through the current page's sentences containing a keyword. Thread-safe."""

    def __init__(self, store: DocStore):
        self.store = store
        self._lock = threading.Lock()
        self._page: Optional[Page] = None
        self._keyword: Optional[str] = None
        self._hits: list[str] = []
        self._next = 0

    @property
    def page(self) -> Optional[Page]:
        """The current page (None before the first successful search)."""
        return self._page

    def search(self, entity: str) -> str:
        """Open the page titled ``entity`` (case and whitespace ignored; surrounding quotes or brackets
        too) and return its first sentences; otherwise ``Could not find X. Similar: ['A', ...].`` with
        the top BM25 titles (the current page stays open)."""
        entity = " ".join(str(entity).split())
        if not entity:
            return "Search needs a page title."
        page = self.find(entity)
        if page is None:
            similar = [title for title, _ in self.store.rank(entity, SIMILAR)]
            return f"Could not find {entity}. Similar: {similar}."
        self.open(page)
        return summary(page)

    def find(self, entity: str) -> Optional[Page]:
        """The page ``search`` would open for ``entity`` (None when it would list similar titles)."""
        entity = " ".join(str(entity).split())
        return (self.store.get(entity) or self.store.get(entity.strip("\"'[]()`"))) if entity else None

    def open(self, page: Page) -> None:
        """Make ``page`` the current page (a new lookup starts on it)."""
        with self._lock:
            self._page, self._keyword, self._hits, self._next = page, None, [], 0

    def lookup(self, keyword: str) -> str:
        """The next sentence of the current page containing ``keyword`` (case-insensitive) as
        ``(Result i / n) sentence``; ``No more results.`` when exhausted; a new keyword restarts."""
        keyword = " ".join(str(keyword).split())
        if not keyword:
            return "Lookup needs a keyword."
        with self._lock:
            if self._page is None:
                return "No page is open: use Search first."
            if keyword.casefold() != self._keyword:
                self._keyword = keyword.casefold()
                self._hits = [s for s in self._page.sentences if self._keyword in s.casefold()]
                self._next = 0
            if self._next >= len(self._hits):
                return "No more results."
            self._next += 1
            return f"(Result {self._next} / {len(self._hits)}) {self._hits[self._next - 1]}"

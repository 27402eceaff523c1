"""Cut a Telegram HTML message to a maximum length without breaking it.

Telegram counts a message's length in UTF-16 code units (an emoji outside the Basic
Multilingual Plane counts 2). :func:`safe_cut` measures the raw HTML text (tags and
entities included, so the visible text is never longer) with :func:`utf16_len` and, when it
is over ``limit``, keeps the longest prefix that

- never ends inside an HTML tag (``<b>``, ``</a>``, ``<a href="...">``) or an entity
  (``&amp;``, ``&#128200;``);
- never splits a user-perceived character: the cut falls between extended grapheme clusters
  (Unicode UAX #29 via the ``regex`` module's ``\\X``), so a surrogate pair, an emoji with its
  skin-tone modifier or variation selector, a ZWJ sequence, a flag or a letter with its
  combining accent stays whole;
- prefers the end of a line when one lies in the last half of the kept text;

then appends ``marker`` ("…") and closes, innermost first, every tag left open, all within
``limit``. Text without markup works the same way.
"""

from __future__ import annotations

import regex

__all__ = ["safe_cut", "utf16_len"]

_TOKEN = regex.compile(r"<[^<>]*>|&(?:#\d{1,7}|#x[0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{0,31});|\X", regex.DOTALL)
_TAG_NAME = regex.compile(r"</?\s*([A-Za-z][A-Za-z0-9-]*)")


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (what Telegram's message limit counts)."""
    return len(text.encode("utf-16-le")) // 2


def _closing(stack: list[str]) -> str:
    return "".join(f"</{name}>" for name in reversed(stack))


def safe_cut(text: str, limit: int, marker: str = "…") -> str:
    """``text`` itself when ``utf16_len(text) <= limit``, else its cut form (module docstring).

    Raises:
        ValueError: ``limit`` too small to hold the marker.
    """
    if utf16_len(text) <= limit:
        return text
    if utf16_len(marker) > limit:
        raise ValueError(f"limit {limit} cannot hold the marker {marker!r}")
    stack: list[str] = []
    used = 0
    best = (0, [])          # (end offset in text, open tags there) of the longest valid prefix
    best_line = None        # the same, at the end of a line
    mlen = utf16_len(marker)
    for m in _TOKEN.finditer(text):
        tok = m.group()
        used += utf16_len(tok)
        if tok.startswith("<") and tok.endswith(">") and len(tok) > 2:
            name_m = _TAG_NAME.match(tok)
            if name_m:
                name = name_m.group(1).lower()
                if tok.startswith("</"):
                    if name in stack:
                        del stack[len(stack) - 1 - stack[::-1].index(name):]
                elif not tok.endswith("/>"):
                    stack.append(name)
        if used + mlen + utf16_len(_closing(stack)) > limit:
            break
        best = (m.end(), list(stack))
        if tok == "\n":
            best_line = (m.start(), list(stack))
    end, open_tags = best
    if best_line is not None and best_line[0] >= end // 2:
        end, open_tags = best_line
    return text[:end] + marker + _closing(open_tags)

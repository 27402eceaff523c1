"""The signal bot's safe message cut: at every limit, within the limit (UTF-16 units, as Telegram
counts), never inside a tag, an entity or a user-perceived character, every tag closed."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
import regex

from perpbot.notify.safe_cut import safe_cut, utf16_len

MSG = ("📊 <b>SOL/USDT:USDT</b> &amp; <i>caf\u00e9 e\u0301 👍🏽 🇮🇩 👨‍👩‍👧</i>\n"
       "<b>Bias:</b> LONG (+0.72) &lt;strong&gt; &#128200;\n<a href=\"https://x.test/?a=1&amp;b=2\">link</a> 💹 end")


class Checker(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.stack, self.ok = [], True

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)

    def handle_endtag(self, tag):
        self.ok &= bool(self.stack) and self.stack.pop() == tag


def test_utf16_length_counts_like_telegram():
    assert utf16_len("abc") == 3 and utf16_len("é") == 1 and utf16_len("👍") == 2 and utf16_len("👍🏽") == 4
    assert utf16_len("🇮🇩") == 4 and utf16_len("👨‍👩‍👧") == 8


def test_every_cut_is_within_the_limit_and_well_formed():
    clusters = regex.findall(r"\X", MSG)
    boundaries = {sum(len(c) for c in clusters[:i]) for i in range(len(clusters) + 1)}
    tags = [(m.start(), m.end()) for m in regex.finditer(r"<[^>]*>|&[#\w]+;", MSG)]
    assert safe_cut(MSG, utf16_len(MSG)) == MSG
    for limit in range(1, utf16_len(MSG)):
        out = safe_cut(MSG, limit)
        assert utf16_len(out) <= limit, (limit, out)
        body = out[: out.rindex("…")]
        assert MSG.startswith(body) and len(body) in boundaries, (limit, out)     # a grapheme boundary
        assert not any(a < len(body) < b for a, b in tags), (limit, out)        # not inside a tag / entity
        p = Checker()
        p.feed(out)
        assert p.ok and not p.stack, (limit, out)                               # every tag closed, in order
    assert safe_cut(MSG, 60).endswith("…</i>") or safe_cut(MSG, 60).endswith("…")
    with pytest.raises(ValueError):
        safe_cut(MSG, 0)
    assert safe_cut(MSG, 70) == MSG[: MSG.index("\n")] + "…"       # prefers the end of a line

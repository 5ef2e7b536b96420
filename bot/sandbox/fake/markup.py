"""Formatted-text parsing the way the Bot API does it: HTML, MarkdownV2 and legacy Markdown.

Why the fake parses markup at all: Telegram counts the 4096-character limit *after* removing tags and
decoding entities, in UTF-16 code units, and it rejects broken markup with
``Bad Request: can't parse entities: ...``.  A bot that builds HTML from user input (a patient's name
with ``<`` in it) fails only at this point, so the fake must fail in the same place.

The error texts follow Telegram's server (tdlib ``MessageEntity.cpp``); byte offsets are UTF-8 byte
offsets into the original text, as in the real answers.  One deliberate deviation: the real server
tolerates a bare ``&`` that does not start an entity, although the Bot API documentation requires
``&amp;``.  The fake enforces the documented rule so such texts are caught in tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.fake import errors

__all__ = ["ParseError", "ParsedText", "parse_text", "utf16_len"]


class ParseError(Exception):
    """Broken markup; the message is the part after ``can't parse entities: ``."""


@dataclass
class ParsedText:
    """Plain text as users see it, plus Bot API ``MessageEntity`` dicts (offsets in UTF-16 units)."""

    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def parse_text(text: str, parse_mode: str | None, entities: Any = None) -> ParsedText:
    """Parse ``text`` according to ``parse_mode``; raise :class:`errors.ApiError` (400) when broken."""
    if not parse_mode:
        return ParsedText(text, list(entities) if isinstance(entities, list) else [])
    mode = parse_mode.lower()
    try:
        if mode == "html":
            parsed = _HtmlParser(text).parse()
        elif mode == "markdownv2":
            parsed = _MarkdownV2Parser(text).parse()
        elif mode == "markdown":
            parsed = _parse_legacy_markdown(text)
        else:
            raise errors.bad_request(errors.UNSUPPORTED_PARSE_MODE)
    except ParseError as exc:
        raise errors.bad_request(errors.CANT_PARSE + str(exc)) from None
    parsed.entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return parsed


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _normalize_url(url: str) -> str | None:
    url = url.strip()
    if not url:
        return None
    if url.startswith("tg://") or "://" in url or url.startswith("mailto:"):
        return url
    if re.match(r"^[\w.-]+\.[a-zA-Z]{2,}", url):
        return "http://" + url + ("/" if "/" not in url else "")
    return None


class _Builder:
    """Accumulates the plain text and tracks the UTF-16 position for entity offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[dict[str, Any]] = []

    def add(self, s: str) -> None:
        self.parts.append(s)
        self.pos += utf16_len(s)

    def entity(self, type_: str, start: int, **extra: Any) -> None:
        """Record an entity from ``start`` to the current position; empty entities are dropped like Telegram does."""
        if self.pos > start:
            self.entities.append({"type": type_, "offset": start, "length": self.pos - start, **extra})

    def result(self) -> ParsedText:
        return ParsedText("".join(self.parts), self.entities)


# --------------------------------------------------------------------------------------------- HTML

_SPACE = " \t\r\n\f"
_HTML_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "span": "spoiler", "a": "text_link", "code": "code", "pre": "pre", "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:(lt|gt|amp|quot);?|#(\d+);?|#[xX]([0-9a-fA-F]+);?|([a-zA-Z][a-zA-Z0-9]*;))")


@dataclass
class _OpenTag:
    name: str
    start: int  # UTF-16 offset in the output
    byte_offset: int
    attrs: dict[str, str]


class _HtmlParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.out = _Builder()
        self.stack: list[_OpenTag] = []

    def error(self, message: str) -> ParseError:
        return ParseError(message)

    def boff(self, index: int) -> int:
        return _byte_offset(self.text, index)

    def parse(self) -> ParsedText:
        text, n = self.text, len(self.text)
        while self.i < n:
            c = text[self.i]
            if c == "&":
                self.out.add(self.decode_entity(strict=True))
            elif c == "<":
                if self.i + 1 < n and text[self.i + 1] == "/":
                    self.end_tag()
                else:
                    self.start_tag()
            else:
                j = self.i
                while j < n and text[j] not in "<&":
                    j += 1
                self.out.add(text[self.i : j])
                self.i = j
        if self.stack:
            raise self.error(f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"')
        return self.out.result()

    def decode_entity(self, *, strict: bool) -> str:
        m = _ENTITY_RE.match(self.text, self.i)
        if m is None:
            if strict:
                raise self.error(
                    f"Character '&' at byte offset {self.boff(self.i)} is not a part of an HTML entity; "
                    "escape it as &amp;"
                )
            self.i += 1
            return "&"
        self.i = m.end()
        if m.group(1):
            return _NAMED_ENTITIES[m.group(1)]
        if m.group(4):
            return m.group(0)  # unknown named entity: kept literally, as Telegram does
        code = int(m.group(2), 10) if m.group(2) else int(m.group(3), 16)
        if 0xD800 <= code <= 0xDFFF:
            raise self.error(
                "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched "
                "surrogate code units"
            )
        return chr(code) if 0 < code <= 0x10FFFF else m.group(0)

    def skip_spaces(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in _SPACE:
            self.i += 1

    def start_tag(self) -> None:
        text, n = self.text, len(self.text)
        begin = self.i
        self.i += 1
        while self.i < n and text[self.i] not in _SPACE and text[self.i] != ">":
            self.i += 1
        if self.i >= n:
            raise self.error(f"Unclosed start tag at byte offset {self.boff(begin)}")
        name = text[begin + 1 : self.i].lower()
        if name not in _HTML_TYPES:
            raise self.error(f'Unsupported start tag "{name}" at byte offset {self.boff(begin)}')
        attrs: dict[str, str] = {}
        while True:
            self.skip_spaces()
            if self.i >= n:
                raise self.error(f'Unclosed start tag "{name}" at byte offset {self.boff(begin)}')
            if text[self.i] == ">":
                break
            attr_begin = self.i
            while self.i < n and text[self.i] not in _SPACE and text[self.i] not in "=>":
                self.i += 1
            attr = text[attr_begin : self.i].lower()
            if not attr:
                raise self.error(f'Empty attribute name in the tag "{name}" at byte offset {self.boff(begin)}')
            self.skip_spaces()
            if self.i >= n:
                raise self.error(f'Unclosed start tag "{name}" at byte offset {self.boff(begin)}')
            if text[self.i] != "=":
                if name == "blockquote" and attr == "expandable":
                    attrs[attr] = ""
                    continue
                raise self.error(
                    f'Expected equal sign in declaration of an attribute of the tag "{name}" '
                    f"at byte offset {self.boff(begin)}"
                )
            self.i += 1
            self.skip_spaces()
            if self.i >= n:
                raise self.error(f'Unclosed start tag "{name}" at byte offset {self.boff(begin)}')
            quote = text[self.i]
            if quote in "\"'":
                end = text.find(quote, self.i + 1)
                if end < 0:
                    raise self.error(f"Unclosed start tag at byte offset {self.boff(begin)}")
                raw = text[self.i + 1 : end]
                self.i = end + 1
            else:
                token_begin = self.i
                while self.i < n and text[self.i] not in _SPACE and text[self.i] != ">":
                    self.i += 1
                if self.i >= n:
                    raise self.error(f"Unexpected end of name token at byte offset {self.boff(token_begin)}")
                raw = text[token_begin : self.i]
            attrs[attr] = _decode_attribute(raw)
        self.i += 1  # the '>'
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise self.error(f'Tag "span" must have class "tg-spoiler" at byte offset {self.boff(begin)}')
        self.stack.append(_OpenTag(name, self.out.pos, self.boff(begin), attrs))

    def end_tag(self) -> None:
        text, n = self.text, len(self.text)
        begin = self.i
        if not self.stack:
            raise self.error(f"Unexpected end tag at byte offset {self.boff(begin)}")
        self.i += 2
        name_begin = self.i
        while self.i < n and text[self.i] not in _SPACE and text[self.i] != ">":
            self.i += 1
        name = text[name_begin : self.i].lower()
        self.skip_spaces()
        if self.i >= n or text[self.i] != ">":
            raise self.error(f"Unclosed end tag at byte offset {self.boff(begin)}")
        self.i += 1
        tag = self.stack.pop()
        if name and name != tag.name:
            raise self.error(
                f'Unmatched end tag at byte offset {self.boff(begin)}, expected "</{tag.name}>", found "</{name}>"'
            )
        self.close(tag)

    def close(self, tag: _OpenTag) -> None:
        kind = _HTML_TYPES[tag.name]
        if kind == "text_link":
            url = _normalize_url(tag.attrs.get("href", "") or "")
            if url is None and "href" not in tag.attrs:
                url = _normalize_url("".join(self.out.parts)[-(self.out.pos - tag.start) :] if self.out.pos > tag.start else "")
            if url:
                self.out.entity("text_link", tag.start, url=url)
        elif kind == "code":
            language = tag.attrs.get("class", "")
            parent = self.stack[-1] if self.stack else None
            if parent is not None and parent.name == "pre" and parent.start == tag.start:
                if language.startswith("language-") and len(language) > 9:
                    parent.attrs["language"] = language[9:]
                    return
            self.out.entity("code", tag.start)
        elif kind == "pre":
            language = tag.attrs.get("language")
            if language:
                self.out.entity("pre", tag.start, language=language)
            else:
                self.out.entity("pre", tag.start)
        elif kind == "blockquote":
            self.out.entity("expandable_blockquote" if "expandable" in tag.attrs else "blockquote", tag.start)
        elif kind == "custom_emoji":
            self.out.entity("custom_emoji", tag.start, custom_emoji_id=tag.attrs.get("emoji-id", "0"))
        else:
            self.out.entity(kind, tag.start)


def _decode_attribute(raw: str) -> str:
    """Attribute values (URLs) are decoded leniently: a raw ``&`` in ``href`` is common and accepted."""

    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            return _NAMED_ENTITIES[m.group(1)]
        if m.group(2) or m.group(3):
            code = int(m.group(2), 10) if m.group(2) else int(m.group(3), 16)
            return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else m.group(0)
        return m.group(0)

    return _ENTITY_RE.sub(repl, raw)


# --------------------------------------------------------------------------------------- MarkdownV2

_MD2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MD2_NAMES = {
    "bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
    "spoiler": "Spoiler", "code": "Code", "pre": "Pre", "pre_code": "PreCode", "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


@dataclass
class _MdOpen:
    kind: str
    start: int
    byte_offset: int
    extra: dict[str, Any] = field(default_factory=dict)


class _MarkdownV2Parser:
    """MarkdownV2 as documented: every reserved character outside an entity must be escaped with ``\\``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.out = _Builder()
        self.stack: list[_MdOpen] = []
        self.quote_start: int | None = None

    def boff(self, index: int) -> int:
        return _byte_offset(self.text, index)

    def top(self) -> str | None:
        return self.stack[-1].kind if self.stack else None

    def toggle(self, kind: str, i: int, width: int) -> int:
        if self.top() == kind:
            opened = self.stack.pop()
            self.out.entity(kind, opened.start)
        else:
            self.stack.append(_MdOpen(kind, self.out.pos, self.boff(i)))
        return i + width

    def parse(self) -> ParsedText:
        text, n = self.text, len(self.text)
        i = 0
        while i < n:
            c = text[i]
            top = self.top()
            if c == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
                self.out.add(text[i + 1])
                i += 2
                continue
            if top in ("code", "pre"):
                i = self.inside_code(i)
                continue
            if c == "\n":
                self.out.add(c)
                i += 1
                if self.quote_start is not None and not text.startswith(">", i):
                    self.out.pos -= 1
                    self.out.entity("blockquote", self.quote_start)
                    self.out.pos += 1
                    self.quote_start = None
                if text.startswith(">", i):
                    i += 1
                    if self.quote_start is None:
                        self.quote_start = self.out.pos
                continue
            if c == ">" and i == 0:
                self.quote_start = self.out.pos
                i += 1
                continue
            if c not in _MD2_RESERVED:
                self.out.add(c)
                i += 1
                continue
            i = self.special(i)
        if self.stack:
            opened = self.stack[-1]
            if opened.kind == "text_link" and opened.extra.get("url_started"):
                raise ParseError(f"Can't find end of a URL at byte offset {opened.extra['url_offset']}")
            raise ParseError(f"Can't find end of {_MD2_NAMES[opened.kind]} entity at byte offset {opened.byte_offset}")
        if self.quote_start is not None:
            self.out.entity("blockquote", self.quote_start)
        return self.out.result()

    def inside_code(self, i: int) -> int:
        text = self.text
        opened = self.stack[-1]
        if opened.kind == "pre" and text.startswith("```", i):
            self.stack.pop()
            if opened.extra.get("language"):
                self.out.entity("pre", opened.start, language=opened.extra["language"])
            else:
                self.out.entity("pre", opened.start)
            return i + 3
        if opened.kind == "code" and text[i] == "`":
            self.stack.pop()
            self.out.entity("code", opened.start)
            return i + 1
        self.out.add(text[i])
        return i + 1

    def special(self, i: int) -> int:
        text, n = self.text, len(self.text)
        c = text[i]
        top = self.top()
        if c == "*":
            return self.toggle("bold", i, 1)
        if c == "~":
            return self.toggle("strikethrough", i, 1)
        if c == "|" and text.startswith("||", i):
            return self.toggle("spoiler", i, 2)
        if c == "_":
            double = text.startswith("__", i)
            if top == "underline" and double:
                return self.toggle("underline", i, 2)
            if top == "italic" and not double:
                return self.toggle("italic", i, 1)
            if double:
                return self.toggle("underline", i, 2)
            return self.toggle("italic", i, 1)
        if c == "`":
            if text.startswith("```", i):
                opened = _MdOpen("pre", self.out.pos, self.boff(i))
                j = i + 3
                newline = text.find("\n", j)
                if newline >= 0:
                    first_line = text[j:newline].rstrip("\r")
                    if first_line and not any(ch in _SPACE for ch in first_line) and "`" not in first_line:
                        opened.extra["language"] = first_line
                        opened.kind = "pre"
                        j = newline + 1
                elif j < n and "```" not in text[j:]:
                    kind = "pre_code" if any(ch in _SPACE for ch in text[j:]) else "pre"
                    raise ParseError(f"Can't find end of {_MD2_NAMES[kind]} entity at byte offset {self.boff(i)}")
                self.stack.append(opened)
                return j
            self.stack.append(_MdOpen("code", self.out.pos, self.boff(i)))
            return i + 1
        if c == "!" and text.startswith("![", i):
            self.stack.append(_MdOpen("custom_emoji", self.out.pos, self.boff(i)))
            return i + 2
        if c == "[":
            self.stack.append(_MdOpen("text_link", self.out.pos, self.boff(i)))
            return i + 1
        if c == "]" and top in ("text_link", "custom_emoji"):
            opened = self.stack.pop()
            j = i + 1
            url = ""
            if j < n and text[j] == "(":
                url_begin = j + 1
                k = url_begin
                chars: list[str] = []
                while k < n and text[k] != ")":
                    if text[k] == "\\" and k + 1 < n:
                        chars.append(text[k + 1])
                        k += 2
                        continue
                    chars.append(text[k])
                    k += 1
                if k >= n:
                    raise ParseError(f"Can't find end of a URL at byte offset {self.boff(url_begin)}")
                url = "".join(chars)
                j = k + 1
            if opened.kind == "custom_emoji":
                m = re.match(r"tg://emoji\?id=(\d+)", url)
                if m:
                    self.out.entity("custom_emoji", opened.start, custom_emoji_id=m.group(1))
            else:
                full = _normalize_url(url) if url else _normalize_url("".join(self.out.parts)[-(self.out.pos - opened.start) :] if self.out.pos > opened.start else "")
                if full:
                    self.out.entity("text_link", opened.start, url=full)
            return j
        raise ParseError(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")


# ---------------------------------------------------------------------------------- legacy Markdown

_LEGACY = {"*": "bold", "_": "italic", "`": "code"}


def _parse_legacy_markdown(text: str) -> ParsedText:
    """Legacy ``Markdown``: no nesting, no reserved characters, ``\\`` escapes the four markers."""
    out = _Builder()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "*_`[":
            out.add(text[i + 1])
            i += 2
            continue
        if c in "*_`[":
            begin = i
            if text.startswith("```", i):
                end = text.find("```", i + 3)
                if end < 0:
                    raise ParseError(f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}")
                start = out.pos
                out.add(text[i + 3 : end])
                out.entity("pre", start)
                i = end + 3
                continue
            if c == "[":
                close = text.find("]", i + 1)
                if close < 0:
                    raise ParseError(f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}")
                start = out.pos
                out.add(text[i + 1 : close])
                i = close + 1
                if text.startswith("(", i):
                    end = text.find(")", i)
                    if end < 0:
                        raise ParseError(f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}")
                    url = _normalize_url(text[i + 1 : end])
                    if url:
                        out.entity("text_link", start, url=url)
                    i = end + 1
                continue
            end = text.find(c, i + 1)
            if end < 0:
                raise ParseError(f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}")
            start = out.pos
            out.add(text[i + 1 : end])
            out.entity(_LEGACY[c], start)
            i = end + 1
            continue
        out.add(c)
        i += 1
    return out.result()

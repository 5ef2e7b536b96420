"""The gettext catalogues keep up with the code.

Every message the code marks (`_`, `t`, `tr`, `n`) must have a Simplified Chinese translation, and
every translation must keep the `{placeholders}` of its English msgid, or `.format()` breaks at run
time. After changing user-facing text in the code, refresh the catalogues:

    .venv/bin/pybabel extract -F babel.cfg -k _ -k t -k tr -k ct -k "n:1,2" --no-location \
        --sort-output -o content/locales/messages.pot bot dialogs content
    .venv/bin/pybabel update -i content/locales/messages.pot -d content/locales -D messages \
        --no-fuzzy-matching
then translate the new empty msgstrs in content/locales/zh_CN/LC_MESSAGES/messages.po.
"""

from __future__ import annotations

import string
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from content.i18n import translator

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ROOT / "content" / "locales"
SOURCE_DIRS = ("bot", "dialogs", "content")
# The same keywords as the `pybabel extract` command above (`-k` adds to Babel's defaults).
KEYWORDS = {**DEFAULT_KEYWORDS, "_": None, "t": None, "tr": None, "ct": None, "n": (1, 2)}


def _po(language: str) -> Catalog:
    with (LOCALES / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def _msgid(message: str | tuple[str, ...] | list[str]) -> str:
    return message if isinstance(message, str) else message[0]


@pytest.fixture(scope="module")
def extracted() -> dict[str, str]:
    """msgid -> "file:line" of its first use, for every message marked in the code right now."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: dict[str, str] = {}
    for folder in SOURCE_DIRS:
        for filename, lineno, message, _comments, _context in extract_from_dir(
            ROOT / folder, method_map, options_map, keywords=KEYWORDS
        ):
            msgid = _msgid(message)
            if msgid:
                found.setdefault(msgid, f"{folder}/{filename}:{lineno}")
    assert found, "no messages extracted: check babel.cfg and the keywords"
    return found


@pytest.fixture(scope="module")
def zh() -> Catalog:
    return _po("zh_CN")


def test_every_message_in_the_code_has_a_chinese_translation(extracted, zh):
    problems = []
    for msgid, where in sorted(extracted.items()):
        message = zh.get(msgid)
        if message is None:
            problems.append(f"  missing  {msgid!r}  ({where})")
            continue
        strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
        if not all(s and s.strip() for s in strings):
            problems.append(f"  empty    {msgid!r}  ({where})")
        elif message.fuzzy:
            problems.append(f"  fuzzy    {msgid!r}  ({where})")
    assert not problems, (
        f"{len(problems)} message(s) without a zh_CN translation; refresh messages.pot, run "
        "`pybabel update` and translate them (see this module's docstring):\n" + "\n".join(problems)
    )


def _placeholders(text: str) -> Counter[str]:
    """`{name}`, `{bmi:.1f}`, `{x!r}` fields of a str.format template, with how often each occurs."""
    fields: Counter[str] = Counter()
    for _literal, name, spec, conversion in string.Formatter().parse(text):
        if name is not None:
            fields[name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")] += 1
    return fields


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_translations_keep_the_placeholders_of_their_msgid(language):
    problems = []
    for message in _po(language):
        if not message.id:
            continue  # the header
        ids = list(message.id) if isinstance(message.id, (list, tuple)) else [message.id]
        strings = list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]
        for i, text in enumerate(strings):
            if not text:
                continue  # untranslated: gettext falls back to the msgid itself
            source = ids[min(i, len(ids) - 1)]
            try:
                want, got = _placeholders(source), _placeholders(text)
            except ValueError as exc:  # unbalanced braces
                problems.append(f"  {source!r}: {exc} in {text!r}")
                continue
            if want != got:
                problems.append(f"  {source!r}\n    -> {text!r}\n    wants {dict(want)}, has {dict(got)}")
    assert not problems, f"{language}: placeholders changed in translation:\n" + "\n".join(problems)


def test_translator_uses_the_catalogues():
    assert translator("zh_CN")("Yes") == "是"
    assert translator("en")("Yes") == "Yes"

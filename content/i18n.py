"""Per-user translations from Babel message catalogs (`content/locales/<lang>/LC_MESSAGES`).

msgids are the English texts, so the English catalogue may stay empty. The `.mo` files are
compiled by the build (`make`); if one is missing or older than its `.po` (e.g. a bare
`pytest` run) it is compiled here once, so a reply never silently falls back to English.
The language is always passed in: there is no global "current language".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"
LANGUAGES = ("zh_CN", "en")
FALLBACK = "en"


def normalize_language(code: str | None, default: str = "zh_CN") -> str:
    """Map Telegram's `language_code` ("zh-hans", "zh", "en-US") to a language we have."""
    if not code:
        return default
    code = code.replace("-", "_").lower()
    if code.startswith("zh"):
        return "zh_CN"
    if code.startswith("en"):
        return "en"
    return default


def compile_catalogs(languages: Iterable[str] = LANGUAGES) -> None:
    for lang in languages:
        po = LOCALES_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        mo = po.with_suffix(".mo")
        if po.exists() and (not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime):
            with po.open("rb") as src:
                catalog = read_po(src, locale=lang)
            with mo.open("wb") as dst:
                write_mo(dst, catalog)


class Translator:
    """`t("Saved {value}", value=...)` in one language; `t.n(...)` for plurals."""

    def __init__(self, language: str, translations: NullTranslations):
        self.language = language
        self._tr = translations
        self.locale = Locale.parse(language)

    def __call__(self, msgid: str, /, **kwargs: object) -> str:
        text = self._tr.gettext(msgid)
        return text.format(**kwargs) if kwargs else text

    def n(self, singular: str, plural: str, count: int, /, **kwargs: object) -> str:
        return self._tr.ngettext(singular, plural, count).format(count=count, **kwargs)

    def datetime(self, value: datetime, fmt: str = "short") -> str:
        return format_datetime(value, fmt, tzinfo=value.tzinfo, locale=self.locale)


@cache
def translator(language: str) -> Translator:
    language = normalize_language(language)
    compile_catalogs([language])
    translations = Translations.load(str(LOCALES_DIR), [language], DOMAIN)
    return Translator(language, translations)

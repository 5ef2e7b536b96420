"""Settings from the environment (and an optional `.env` file), validated once at start-up.

Every problem is collected and reported as one readable line each, so an operator fixing a
deployment sees all mistakes at once instead of one traceback per restart.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SUPPORTED_LANGUAGES = ("zh_CN", "en")
DEFAULT_DB_URL = "sqlite+aiosqlite:///data/carecircle.sqlite3"
_TOKEN_RE = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class ConfigError(Exception):
    """Raised with one human-readable line per problem found in the configuration."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Settings:
    """Validated configuration. Build with `Settings.from_env()` or directly in tests."""

    telegram_token: str | None = None
    database_url: str = DEFAULT_DB_URL
    telegram_api_base: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    default_timezone: str = "Asia/Shanghai"
    default_language: str = "zh_CN"
    admin_telegram_ids: frozenset[int] = field(default_factory=frozenset)
    bot_username: str | None = None
    # Background loops; tests shorten them.
    outbox_poll_seconds: float = 0.2
    reminder_tick_seconds: float = 30.0
    alert_escalation_minutes: float = 15.0
    dashboard_secret: str = ""
    public_base_url: str | None = None  # dashboard links; default http://HTTP_HOST:HTTP_PORT

    @property
    def sandbox(self) -> bool:
        """No token means the local sandbox: a fake Telegram and a web chat."""
        return not self.telegram_token

    @property
    def webhook(self) -> bool:
        return bool(self.webhook_url)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
        if env is None:
            env = dict(os.environ)
            if dotenv is not None and dotenv.is_file():
                from dotenv import dotenv_values

                for key, value in dotenv_values(dotenv).items():
                    if value is not None:
                        env.setdefault(key, value)
        problems: list[str] = []

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        token = get("TELEGRAM_BOT_TOKEN")
        if token and not _TOKEN_RE.match(token):
            problems.append(
                "TELEGRAM_BOT_TOKEN does not look like a bot token (expected '<digits>:<35 letters>' "
                "from @BotFather); unset it to start the local sandbox"
            )
        db_url = get("DATABASE_URL") or DEFAULT_DB_URL
        if db_url.startswith("postgresql://") or db_url.startswith("postgres://"):
            db_url = "postgresql+asyncpg://" + db_url.split("://", 1)[1]
        if db_url.startswith("sqlite://") and "+aiosqlite" not in db_url:
            db_url = db_url.replace("sqlite://", "sqlite+aiosqlite://", 1)
        if not (db_url.startswith("sqlite+aiosqlite://") or db_url.startswith("postgresql+asyncpg://")):
            problems.append("DATABASE_URL must be a sqlite:/// or postgresql:// URL")
        api_base = get("TELEGRAM_API_BASE")
        if api_base and not api_base.startswith(("http://", "https://")):
            problems.append("TELEGRAM_API_BASE must start with http:// or https://")
        webhook_url = get("WEBHOOK_URL")
        webhook_secret = get("WEBHOOK_SECRET")
        if webhook_url:
            if not webhook_url.startswith("https://") and not webhook_url.startswith("http://127."):
                problems.append("WEBHOOK_URL must be an https:// URL Telegram can reach")
            if not webhook_secret:
                problems.append("WEBHOOK_SECRET is required with WEBHOOK_URL (1-256 of A-Z a-z 0-9 _ -)")
        if webhook_secret and not _SECRET_RE.match(webhook_secret):
            problems.append("WEBHOOK_SECRET may only hold 1-256 of A-Z a-z 0-9 _ -")
        host = get("HTTP_HOST") or "127.0.0.1"
        port_text = get("HTTP_PORT") or "8080"
        port = 8080
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            problems.append(f"HTTP_PORT must be a port number, got {port_text!r}")
        else:
            port = int(port_text)
        tz = get("DEFAULT_TIMEZONE") or "Asia/Shanghai"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"DEFAULT_TIMEZONE {tz!r} is not an IANA time zone such as Asia/Shanghai")
        lang = (get("DEFAULT_LANGUAGE") or "zh_CN").replace("-", "_")
        if lang == "zh":
            lang = "zh_CN"
        if lang not in SUPPORTED_LANGUAGES:
            problems.append(f"DEFAULT_LANGUAGE must be one of {', '.join(SUPPORTED_LANGUAGES)}")
        admins: set[int] = set()
        for part in (get("ADMIN_TELEGRAM_IDS") or "").replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            if part.lstrip("-").isdigit():
                admins.add(int(part))
            else:
                problems.append(f"ADMIN_TELEGRAM_IDS holds {part!r}, which is not a numeric Telegram id")
        if problems:
            raise ConfigError(problems)
        return cls(
            telegram_token=token,
            database_url=db_url,
            telegram_api_base=api_base,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            http_host=host,
            http_port=port,
            default_timezone=tz,
            default_language=lang,
            admin_telegram_ids=frozenset(admins),
            bot_username=get("BOT_USERNAME"),
            dashboard_secret=get("DASHBOARD_SECRET") or "",
            public_base_url=(get("PUBLIC_BASE_URL") or "").rstrip("/") or None,
        )

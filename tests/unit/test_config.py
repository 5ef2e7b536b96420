import pytest

from bot.config import DEFAULT_DB_URL, ConfigError, Settings


def test_defaults_mean_sandbox_with_sqlite() -> None:
    s = Settings.from_env({})
    assert s.sandbox and not s.webhook
    assert s.database_url == DEFAULT_DB_URL
    assert s.default_timezone == "Asia/Shanghai" and s.default_language == "zh_CN"


def test_every_problem_reported_once_in_plain_words() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"TELEGRAM_BOT_TOKEN": "oops", "HTTP_PORT": "eighty", "DEFAULT_TIMEZONE": "Mars/Base",
                           "WEBHOOK_URL": "https://example.org/hook", "ADMIN_TELEGRAM_IDS": "12,abc",
                           "DATABASE_URL": "mysql://x"})
    problems = info.value.problems
    assert len(problems) == 6
    joined = "\n".join(problems)
    for name in ("TELEGRAM_BOT_TOKEN", "HTTP_PORT", "DEFAULT_TIMEZONE", "WEBHOOK_SECRET", "ADMIN_TELEGRAM_IDS",
                 "DATABASE_URL"):
        assert name in joined
    assert "oops" not in joined  # a token, even a wrong one, is never echoed


def test_postgres_url_is_normalised_and_admins_parsed() -> None:
    s = Settings.from_env({"DATABASE_URL": "postgresql://postgres@127.0.0.1/test", "ADMIN_TELEGRAM_IDS": "1, 2",
                           "TELEGRAM_BOT_TOKEN": "123456:" + "A" * 35, "DEFAULT_LANGUAGE": "en"})
    assert s.database_url.startswith("postgresql+asyncpg://")
    assert s.admin_telegram_ids == frozenset({1, 2})
    assert not s.sandbox and s.default_language == "en"

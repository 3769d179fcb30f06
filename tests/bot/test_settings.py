"""BotSettings.from_env: required token, typed values, one clear sentence per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import MIB, BotSettings, MissingToken, SettingsError


def test_defaults_with_only_a_token() -> None:
    settings = BotSettings.from_env({"DISCORD_TOKEN": " abc "})
    assert settings.discord_token == "abc"
    assert settings.guild_ids == ()
    assert settings.api_url == ""  # the embedded service
    assert settings.max_jobs_per_user == 3
    assert settings.upload_limit == 8 * MIB
    assert settings.data_dir == Path("data")
    assert settings.queue_notice == 600.0  # told within the interaction token's 15 minutes
    assert (settings.login_retry_first, settings.login_retry_max) == (5.0, 300.0)


def test_missing_token_says_where_to_get_one() -> None:
    with pytest.raises(MissingToken, match=r"Developer Portal.*Reset Token"):
        BotSettings.from_env({"DISCORD_TOKEN": "  "})


def test_every_variable_is_read() -> None:
    settings = BotSettings.from_env(
        {
            "DISCORD_TOKEN": "t",
            "DISCORD_GUILD_IDS": "123, 456,",
            "IMAGINE_API_URL": "https://imagine.example/",
            "IMAGINE_API_TOKEN": "k",
            "MAX_JOBS_PER_USER": "5",
            "BOT_EDIT_INTERVAL": "0.1",
            "BOT_POLL_INTERVAL": "0.05",
            "IMAGINE_DATA_DIR": "/srv/data",
            "DISCORD_API_BASE": "http://127.0.0.1:9/api/v10/",
            "DISCORD_GATEWAY_URL": "ws://127.0.0.1:9/gateway",
            "BOT_QUEUE_NOTICE": "120",
            "BOT_LOGIN_RETRY_FIRST": "1",
            "BOT_LOGIN_RETRY_MAX": "60",
        }
    )
    assert settings.guild_ids == (123, 456)
    assert settings.api_url == "https://imagine.example"
    assert (settings.api_token, settings.max_jobs_per_user) == ("k", 5)
    assert (settings.edit_interval, settings.poll_interval) == (0.1, 0.05)
    assert settings.data_dir == Path("/srv/data")
    assert settings.discord_api_base == "http://127.0.0.1:9/api/v10"
    assert settings.discord_gateway_url == "ws://127.0.0.1:9/gateway"
    assert settings.queue_notice == 120.0
    assert (settings.login_retry_first, settings.login_retry_max) == (1.0, 60.0)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("DISCORD_GUILD_IDS", "my-server", "server IDs"),
        ("MAX_JOBS_PER_USER", "three", "must be a number"),
        ("MAX_JOBS_PER_USER", "0", "between 1 and 1000"),
        ("MAX_JOBS_PER_USER", "2.5", "whole number"),
        ("IMAGINE_API_URL", "imagine.example", "http://"),
        ("BOT_LOGIN_RETRY_MAX", "0", "between"),
        ("BOT_QUEUE_NOTICE", "soon", "must be a number"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError, match=name) as caught:
        BotSettings.from_env({"DISCORD_TOKEN": "t", name: value})
    assert words in str(caught.value)

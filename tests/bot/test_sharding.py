"""DISCORD_SHARD_COUNT and DISCORD_SHARD_IDS: read into BotSettings, one sentence per mistake, and
the bot class they choose (a plain commands.Bot when unset, as before sharding existed)."""

from __future__ import annotations

import discord
import pytest
from discord.ext import commands

from bot.app import ImagineBot, ShardedImagineBot, create_bot
from bot.settings import BotSettings, SettingsError


def settings(**env: str) -> BotSettings:
    return BotSettings.from_env({"DISCORD_TOKEN": "t", **env})


def test_unset_means_one_unsharded_connection() -> None:
    s = settings()
    assert (s.shard_count, s.shard_ids) == (None, ())


def test_a_count_alone_means_every_shard_in_this_process() -> None:
    s = settings(DISCORD_SHARD_COUNT=" 4 ")
    assert (s.shard_count, s.shard_ids) == (4, ())


def test_a_slice_of_the_shards() -> None:
    s = settings(DISCORD_SHARD_COUNT="4", DISCORD_SHARD_IDS=" 1, 3,")
    assert (s.shard_count, s.shard_ids) == (4, (1, 3))


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"DISCORD_SHARD_COUNT": "two"}, "DISCORD_SHARD_COUNT must be a number"),
        ({"DISCORD_SHARD_COUNT": "0"}, "DISCORD_SHARD_COUNT must be between 1 and"),
        ({"DISCORD_SHARD_COUNT": "1.5"}, "DISCORD_SHARD_COUNT must be a whole number"),
        ({"DISCORD_SHARD_IDS": "0"}, "DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT"),
        (
            {"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "2"},
            "shard numbers from 0 to 1 (DISCORD_SHARD_COUNT is 2)",
        ),
        ({"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "-1"}, "got '-1'"),
        ({"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "0 1"}, "separated by commas"),
        ({"DISCORD_SHARD_COUNT": "4", "DISCORD_SHARD_IDS": "1,1"}, "names shard 1 twice"),
    ],
)
def test_bad_values_say_what_is_accepted(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings(**env)
    assert words in str(caught.value)


def test_a_server_belongs_to_the_shard_discord_computes() -> None:
    guild_id = (123456789 << 22) | 4321  # (guild_id >> 22) % 4 == 1
    assert settings().holds_guild(guild_id)
    assert settings(DISCORD_SHARD_COUNT="4").holds_guild(guild_id)
    assert settings(DISCORD_SHARD_COUNT="4", DISCORD_SHARD_IDS="1,2").holds_guild(guild_id)
    assert not settings(DISCORD_SHARD_COUNT="4", DISCORD_SHARD_IDS="0,3").holds_guild(guild_id)


def test_unset_keeps_the_plain_bot() -> None:
    bot = create_bot(settings())
    assert type(bot) is ImagineBot
    assert not isinstance(bot, discord.AutoShardedClient)
    assert (bot.shard_id, bot.shard_count) == (None, None)  # IDENTIFY carries no shard


def test_a_count_makes_an_auto_sharded_bot_on_that_count() -> None:
    bot = create_bot(settings(DISCORD_SHARD_COUNT="4", DISCORD_SHARD_IDS="1,3"))
    assert isinstance(bot, ShardedImagineBot)
    assert isinstance(bot, commands.AutoShardedBot)
    assert (bot.shard_count, bot.shard_ids) == (4, [1, 3])
    assert bot.settings.shard_ids == (1, 3)


def test_a_count_without_ids_connects_every_shard_never_discords_count() -> None:
    bot = create_bot(settings(DISCORD_SHARD_COUNT="3"))
    assert isinstance(bot, commands.AutoShardedBot)
    # a fixed count: discord.py asks GET /gateway/bot for a recommended one only when it is None
    assert (bot.shard_count, bot.shard_ids) == (3, None)

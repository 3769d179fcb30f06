"""ImagineBot: the commands.Bot subclass; all start-up work happens in ``setup_hook``.

``create_bot`` picks the class: one unsharded gateway connection, as discord.py's plain ``Bot``
makes, unless DISCORD_SHARD_COUNT is set; then ``ShardedImagineBot`` (an ``AutoShardedBot``)
connects this process's slice of the shards (DISCORD_SHARD_IDS), so several processes can share a
bot that is in more servers than one connection may carry.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord.ext import commands

from bot.client import ImagineClient, ImagineError, ServiceUnavailable
from bot.delivery import Deliveries
from bot.embedded import ServiceEndpoint, start_embedded
from bot.limits import JobLimiter
from bot.pending import PendingStore
from bot.posted import Cursors, PostedResults
from bot.preferences import PreferenceStore
from bot.pressed import PressedButtons
from bot.settings import BotSettings
from bot.tree import ImagineTree

log = logging.getLogger(__name__)

EXTENSIONS = (
    "cogs.imagine",
    "cogs.prompts",
    "cogs.buttons",
    "cogs.jobinfo",
    "cogs.settings",
    "cogs.info",
    "cogs.help",
    "cogs.admin",
    "cogs.gallery",
)


class ImagineBot(commands.Bot):
    def __init__(self, settings: BotSettings, **options: Any) -> None:
        # The bot never joins voice: no need to warn on every start that voice libraries are absent.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            # Mention-prefixed text commands need no privileged intent: the owner can type
            # "@bot sync" before any slash command exists.
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            tree_cls=ImagineTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True),
            guild_ready_timeout=settings.guild_ready_timeout,
            **options,
        )
        self.settings = settings
        self._service: ServiceEndpoint | None = None
        self._imagine: ImagineClient | None = None
        self._store: PendingStore | None = None
        self._deliveries: Deliveries | None = None
        self._limiter: JobLimiter | None = None
        self._pressed: PressedButtons | None = None
        self._posted: PostedResults | None = None
        self._cursors: Cursors | None = None
        self._preferences: PreferenceStore | None = None

    # The services cogs are given; set up in setup_hook, so reading them earlier is a bug.
    @property
    def imagine(self) -> ImagineClient:
        assert self._imagine is not None, "setup_hook has not run"
        return self._imagine

    @property
    def deliveries(self) -> Deliveries:
        assert self._deliveries is not None, "setup_hook has not run"
        return self._deliveries

    @property
    def limiter(self) -> JobLimiter:
        assert self._limiter is not None, "setup_hook has not run"
        return self._limiter

    @property
    def pending(self) -> PendingStore:
        assert self._store is not None, "setup_hook has not run"
        return self._store

    @property
    def preferences(self) -> PreferenceStore:
        assert self._preferences is not None, "setup_hook has not run"
        return self._preferences

    @property
    def posted(self) -> PostedResults:
        assert self._posted is not None, "setup_hook has not run"
        return self._posted

    @property
    def cursors(self) -> Cursors:
        assert self._cursors is not None, "setup_hook has not run"
        return self._cursors

    @property
    def pressed(self) -> PressedButtons:
        assert self._pressed is not None, "setup_hook has not run"
        return self._pressed

    async def setup_hook(self) -> None:
        from cogs.buttons import result_view

        settings = self.settings
        url, token = settings.api_url, settings.api_token
        if not url:
            self._service = await start_embedded(settings.environ)
            url, token = self._service.url, token or self._service.token
        self._imagine = ImagineClient(url, token, max_unfinished=settings.max_jobs_per_user)
        await self._report_service(url)
        self._store = await PendingStore.open(settings.data_dir / "bot-pending.sqlite3")
        self._pressed = await PressedButtons.open(settings.data_dir / "bot-pending.sqlite3")
        self._posted = await PostedResults.open(settings.data_dir / "bot-pending.sqlite3")
        self._cursors = await Cursors.open(settings.data_dir / "bot-pending.sqlite3")
        self._preferences = await PreferenceStore.open(settings.data_dir / "bot-pending.sqlite3")
        self._deliveries = Deliveries(
            self, self._imagine, self._store, settings, result_view, posted=self._posted
        )
        self._limiter = JobLimiter(self._imagine, self._deliveries, settings.max_jobs_per_user)
        for extension in EXTENSIONS:
            try:
                await self.load_extension(extension)
            except commands.ExtensionError:
                log.exception("extension %s failed to load", extension)
        if self.shard_count is not None:
            held = settings.shard_ids or range(self.shard_count)
            log.info("connecting shards %s of %d", ", ".join(map(str, held)), self.shard_count)
        for guild_id in settings.guild_ids:
            if not settings.holds_guild(guild_id):
                continue  # the process that holds this server's shard syncs it: once, not N times
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            try:
                synced = await self.tree.sync(guild=guild)
            except discord.HTTPException as exc:
                # One wrong ID, or an invite without the applications.commands scope, must not
                # keep the bot out of the other servers: say what to check and go on.
                log.error(
                    "could not sync commands to server %s (Discord said %s %s): check the ID in "
                    "DISCORD_GUILD_IDS and that the bot was invited there with the scope "
                    "applications.commands",
                    guild_id, exc.status, exc.text or "no reason",
                )  # fmt: skip
                continue
            log.info("synced %d commands to server %s", len(synced), guild_id)
        if not settings.guild_ids:
            log.info("commands not synced on start (no DISCORD_GUILD_IDS); the owner can run /sync")
        pending = await self._store.all()
        for job in pending:
            log.info("job %s: resuming delivery after a restart", job.job_id)
            self._deliveries.resume(job)

    async def _report_service(self, url: str) -> None:
        """Say at start which service and engine answer, or that none does yet (not fatal)."""
        assert self._imagine is not None
        try:
            info = await self._imagine.info()
        except (ServiceUnavailable, ImagineError) as exc:
            log.warning(
                "image service %s does not answer yet (%s); commands will say so until it does",
                url,
                exc,
            )
            return
        log.info("image service %s: engine %s, version %s", url, info.engine, info.version or "?")
        if info.placeholder and self._service is None:  # the embedded service says so itself
            log.warning("the placeholder engine draws patterns, not AI images (set IMAGINE_ENGINE)")

    async def close(self) -> None:
        # Idempotent: discord.py may call close() twice (on error, then on exit).
        deliveries, self._deliveries = self._deliveries, None
        if deliveries is not None:
            await deliveries.close()
        await super().close()
        imagine, self._imagine = self._imagine, None
        if imagine is not None:
            await imagine.close()
        service, self._service = self._service, None
        if service is not None:
            await service.stop()
        store, self._store = self._store, None
        if store is not None:
            await store.close()
        pressed, self._pressed = self._pressed, None
        if pressed is not None:
            await pressed.close()
        preferences, self._preferences = self._preferences, None
        if preferences is not None:
            await preferences.close()
        posted, self._posted = self._posted, None
        if posted is not None:
            await posted.close()
        cursors, self._cursors = self._cursors, None
        if cursors is not None:
            await cursors.close()


class ShardedImagineBot(ImagineBot, commands.AutoShardedBot):
    """The same bot on a fixed number of shards, connecting only this process's slice of them.

    The count is always given (never Discord's recommendation from GET /gateway/bot), so that the
    processes of one cluster agree on it and so on which server each shard carries.
    """

    def __init__(self, settings: BotSettings) -> None:
        assert settings.shard_count is not None
        super().__init__(
            settings,
            shard_count=settings.shard_count,
            shard_ids=list(settings.shard_ids) or None,
        )


def create_bot(settings: BotSettings) -> ImagineBot:
    """A sharded bot when DISCORD_SHARD_COUNT is set, else today's single connection."""
    if settings.shard_count is None:
        return ImagineBot(settings)
    return ShardedImagineBot(settings)

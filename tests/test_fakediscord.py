"""The fake Discord driven by the real discord.py: a minimal bot defined here (not the project's)
logs in, syncs guild commands, answers slash commands and buttons; every enforced rule is hit."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import warnings
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

with warnings.catch_warnings():
    # discord.py imports audioop (voice), deprecated since Python 3.11; pytest runs with -W error
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord
    from discord import app_commands
    from discord.ext import commands

from tests.fakediscord import FakeDiscord, FakeInteraction, run_bot

pytest_plugins = ["tests.fakediscord.fixtures"]

Outcomes = dict[str, Any]


def png(width: int = 64, height: int = 48, colour: str = "orange") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


class GridButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"fd:(?P<action>[a-z]+):(?P<n>\d+)",
):
    """A persistent button: its state lives in the custom_id, so any bot process can answer it."""

    def __init__(self, action: str, n: int) -> None:
        super().__init__(
            discord.ui.Button(label=f"{action.upper()}{n}", custom_id=f"fd:{action}:{n}")
        )
        self.action, self.n = action, n

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> GridButton:
        return cls(match["action"], int(match["n"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if self.action == "edit":
            await interaction.response.edit_message(content=f"edited by {self.n}")
            return
        await interaction.response.defer()
        await interaction.followup.send(f"followup {self.n}")
        assert isinstance(interaction.channel, discord.TextChannel)
        assert interaction.message is not None
        await interaction.channel.send(f"channel {self.n}", reference=interaction.message)


def grid_view() -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for n in range(1, 5):
        view.add_item(GridButton("up", n))
    view.add_item(GridButton("edit", 1))
    return view


async def answer_imagine(
    interaction: discord.Interaction[Any], prompt: str, image: discord.Attachment | None
) -> None:
    await interaction.response.defer(thinking=True)
    note = ""
    if image is not None:
        with Image.open(io.BytesIO(await image.read())) as seen:
            note = f" (image {seen.width}x{seen.height})"
    await interaction.edit_original_response(
        content=f"**{prompt}**{note}",
        attachments=[discord.File(io.BytesIO(png()), "grid.png")],
        view=grid_view(),
    )


class FakeBot(commands.Bot):
    def __init__(
        self, fd: FakeDiscord, work_delay: float = 0.0, intents: discord.Intents | None = None
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents or discord.Intents.default(),
            guild_ready_timeout=0.05,
        )
        self.guild_object = discord.Object(int(fd.guild_id))
        self.work_delay = work_delay
        self.outcomes: Outcomes = {}
        self.resumed = asyncio.Event()

    async def setup_hook(self) -> None:
        self.add_dynamic_items(GridButton)
        for command in [*make_commands(self), *make_form_commands(self)]:
            self.tree.add_command(command, guild=self.guild_object)
        await self.tree.sync(guild=self.guild_object)

    async def on_resumed(self) -> None:
        self.resumed.set()

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.outcomes.setdefault("reactions", []).append(payload)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py waits 5 s before every re-IDENTIFY (Discord's identify rate limit); not here."""


def make_commands(bot: FakeBot) -> list[app_commands.Command[Any, Any, Any]]:
    @app_commands.command(description="Draw a picture")
    @app_commands.describe(prompt="what to draw", image="a picture to start from")
    async def imagine(
        interaction: discord.Interaction[Any], prompt: str, image: discord.Attachment | None = None
    ) -> None:
        await answer_imagine(interaction, prompt, image)

    @app_commands.command(description="An answer only you can see")
    async def secret(interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_message("only for you", ephemeral=True)

    @app_commands.command(description="Defers after a delay, then edits the original")
    async def late(interaction: discord.Interaction[Any]) -> None:
        try:
            await asyncio.sleep(bot.work_delay)
            await interaction.response.defer()
            await asyncio.sleep(bot.work_delay)
            await interaction.edit_original_response(content="done")
        except discord.HTTPException as error:
            bot.outcomes["late"] = error

    @app_commands.command(description="Posts in the channel")
    @app_commands.describe(size="bytes to attach", length="characters of content")
    async def post(interaction: discord.Interaction[Any], size: int = 0, length: int = 10) -> None:
        await interaction.response.defer(ephemeral=True)
        assert isinstance(interaction.channel, discord.TextChannel | discord.Thread)
        files = [discord.File(io.BytesIO(b"x" * size), "blob.bin")] if size else []
        try:
            await interaction.channel.send("p" * length, files=files)
        except discord.HTTPException as error:
            bot.outcomes["post"] = error
            await interaction.edit_original_response(content="could not post")
        else:
            await interaction.edit_original_response(content="posted")

    @app_commands.command(description="Thinks, then answers with a followup")
    async def think(interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("thought it over", ephemeral=True)
        await interaction.followup.send("one more thing")

    return [imagine, secret, late, post, think]


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    """A Label around a paragraph input (min/max, prefilled) and a classic action-row input."""

    def __init__(self, edit: bool = False) -> None:
        super().__init__(custom_id="fd:feedback")
        self.edit = edit
        self.idea: discord.ui.TextInput[Any] = discord.ui.TextInput(
            custom_id="idea",
            style=discord.TextStyle.paragraph,
            min_length=3,
            max_length=50,
            default="a cat",
        )
        self.add_item(discord.ui.Label(text="Your idea", component=self.idea))
        self.nick: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Name", custom_id="nick", required=False, max_length=20
        )
        self.add_item(self.nick)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        text = f"idea={self.idea.value} nick={self.nick.value}"
        if self.edit:
            await interaction.response.edit_message(content=text)
        else:
            await interaction.response.send_message(text)


class RenameView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Rename", custom_id="fd:rename")
    async def rename(self, interaction: discord.Interaction[Any], button: Any) -> None:
        await interaction.response.send_modal(FeedbackModal(edit=True))


def make_form_commands(bot: FakeBot) -> list[Any]:
    @app_commands.command(description="Opens a feedback form")
    async def feedback(interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_modal(FeedbackModal())

    @app_commands.command(description="A message with a button that opens a form")
    async def rename(interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_message("name me", view=RenameView())

    @app_commands.command(description="Defers, then tries to open a form")
    async def slowform(interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer()
        try:
            await interaction.response.send_modal(FeedbackModal())
        except discord.InteractionResponded as error:
            bot.outcomes["slowform local"] = error
        try:  # past discord.py's own bookkeeping, as a bot on raw HTTP would do it
            await discord.InteractionResponse(interaction).send_modal(FeedbackModal())
        except discord.HTTPException as error:
            bot.outcomes["slowform"] = error

    @app_commands.command(description="Sends you a DM with a file, then edits it")
    async def dm(interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True)
        try:
            sent = await interaction.user.send(
                "hello", file=discord.File(io.BytesIO(png()), "a.png")
            )
            await sent.edit(content="hello again")
        except discord.Forbidden as error:
            bot.outcomes["dm"] = error
            await interaction.edit_original_response(content="your DMs are closed")
        else:
            await interaction.edit_original_response(content="sent")

    @app_commands.command(description="Your permissions")
    async def whoami(interaction: discord.Interaction[Any]) -> None:
        assert isinstance(interaction.user, discord.Member)
        await interaction.response.send_message(
            f"manage_guild={interaction.permissions.manage_guild} "
            f"manage_messages={interaction.user.guild_permissions.manage_messages}"
        )

    async def describe(interaction: discord.Interaction[Any], message: discord.Message) -> None:
        await message.add_reaction("\N{ENVELOPE}")
        await interaction.response.send_message(f"{message.id}: {message.content}", ephemeral=True)

    menu = app_commands.ContextMenu(name="Describe", callback=describe)
    return [feedback, rename, slowform, dm, whoami, menu]


@pytest.fixture
async def bot(
    fake_discord: FakeDiscord, discord_errors: list[logging.LogRecord]
) -> AsyncIterator[FakeBot]:
    client = FakeBot(fake_discord)
    async with run_bot(client, fake_discord):
        yield client


def last_message(fd: FakeDiscord, **match: Any) -> dict[str, Any] | None:
    found = [m for m in fd.messages() if all(m.get(k) == v for k, v in match.items())]
    return found[-1] if found else None


async def imagine(fd: FakeDiscord, prompt: str = "a cat", **kwargs: Any) -> FakeInteraction:
    inter = await fd.slash("imagine", {"prompt": prompt}, **kwargs)
    await fd.wait_for(lambda: inter.original is not None and inter.original["attachments"])
    return inter


# --- login, commands, slash, buttons -----------------------------------------------------------


async def test_login_identifies_and_syncs_guild_commands(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    paths = [(c["method"], c["path"]) for c in fd.calls]
    assert ("GET", "/users/@me") in paths
    assert ("GET", "/oauth2/applications/@me") in paths
    assert ("PUT", f"/applications/{fd.application_id}/guilds/{fd.guild_id}/commands") in paths
    names = sorted(c["name"] for c in fd.registered_commands(fd.guild_id))
    assert names == [
        "Describe",
        "dm",
        "feedback",
        "imagine",
        "late",
        "post",
        "rename",
        "secret",
        "slowform",
        "think",
        "whoami",
    ]
    assert fd.registered_commands() == []
    (opened,) = fd.gateway_connections
    assert opened["query"] == {"v": "10", "encoding": "json", "compress": "zlib-stream"}
    ready = next(e["payload"] for e in fd.gateway_log if e["payload"].get("t") == "READY")
    assert ready["d"]["resume_gateway_url"].startswith(f"ws://127.0.0.1:{fd.port}/")
    assert bot.get_guild(int(fd.guild_id)) is not None
    assert bot.user is not None
    assert str(bot.user.id) == fd.bot_user["id"]
    assert fd.errors == []


async def test_slash_defers_then_edits_with_a_file_and_buttons(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    inter = await imagine(fd, "a cat")
    assert inter.response_type == 5
    assert inter.ack_delay is not None
    assert inter.ack_delay < 3.0
    original = inter.original
    assert original is not None
    assert original["content"] == "**a cat**"
    assert original["flags"] == 0  # the loading flag is gone after the edit
    assert original["type"] == 20
    assert original["interaction_metadata"]["name"] == "imagine"
    (attachment,) = original["attachments"]
    assert attachment["filename"] == "grid.png"
    assert attachment["content_type"] == "image/png"
    assert (attachment["width"], attachment["height"]) == (64, 48)
    assert attachment["url"].startswith(fd.cdn_base)
    with Image.open(io.BytesIO(await fd.read_attachment(attachment))) as grid:
        assert grid.size == (64, 48)
    (row,) = original["components"]
    assert [b["custom_id"] for b in row["components"]] == [
        "fd:up:1",
        "fd:up:2",
        "fd:up:3",
        "fd:up:4",
        "fd:edit:1",
    ]
    assert len(original["edits"]) == 1
    assert fd.errors == []


async def test_slash_attachment_option_is_resolved_on_the_cdn(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    inter = await imagine(
        fd, "like this", attachments={"image": (png(20, 10), "in put.png", "image/png")}
    )
    (attachment,) = inter.payload["data"]["resolved"]["attachments"].values()
    assert attachment["ephemeral"] is True
    assert attachment["filename"] == "in_put.png"
    assert inter.original is not None
    assert inter.original["content"] == "**like this** (image 20x10)"


async def test_slash_refuses_what_the_client_would_not_send(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    with pytest.raises(LookupError, match="not registered"):
        await fake_discord.slash("paint", {"prompt": "x"})
    with pytest.raises(ValueError, match="needs the option 'prompt'"):
        await fake_discord.slash("imagine", {})
    with pytest.raises(LookupError, match="no option 'style'"):
        await fake_discord.slash("imagine", {"prompt": "x", "style": "raw"})
    with pytest.raises(TypeError):
        await fake_discord.slash("post", {"size": "big"})


async def test_persistent_button_click_defers_and_posts_followup_and_reply(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    alice = fd.add_user("alice")
    original = (await imagine(fd)).original
    assert original is not None
    click = await fd.click(original["id"], "fd:up:2", user=alice)
    reply = await fd.wait_for(lambda: last_message(fd, content="channel 2"))
    assert click.response_type == 6
    (followup,) = click.followups
    assert followup["content"] == "followup 2"
    assert followup["interaction_metadata"]["user"]["id"] == alice["id"]
    assert followup["interaction_metadata"]["interacted_message_id"] == original["id"]
    assert reply["type"] == 19
    assert reply["message_reference"]["message_id"] == original["id"]
    assert click.payload["message"]["id"] == original["id"]
    with pytest.raises(LookupError):
        await fd.click(original["id"], "fd:up:9")
    assert fd.errors == []


async def test_button_update_edits_the_clicked_message(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    original = (await imagine(fd)).original
    assert original is not None
    click = await fd.click(original["id"], "fd:edit:1")
    await fd.wait_for(lambda: fd.message(original["id"])["content"] == "edited by 1")
    assert click.response_type == 7
    assert click.original_id == original["id"]
    assert fd.message(original["id"])["attachments"] == original["attachments"]


async def test_ephemeral_response_stays_out_of_the_channel(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    inter = await fd.slash("secret")
    await fd.wait_for(lambda: inter.original)
    assert inter.ephemeral
    assert inter.response_type == 4
    assert inter.original is not None
    assert inter.original["flags"] & 64
    dispatched = [e["payload"].get("t") for e in fd.gateway_log if e["direction"] == "to_bot"]
    assert "MESSAGE_CREATE" not in dispatched  # bots get no gateway event for ephemeral messages
    channel = bot.get_channel(int(fd.channel_id))
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.NotFound):
        await channel.fetch_message(int(inter.original["id"]))


async def test_first_followup_after_a_defer_fills_the_loading_message(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    inter = await fd.slash("think")
    await fd.wait_for(lambda: len(inter.followups) == 1)
    assert inter.original is not None
    assert inter.original["content"] == "thought it over"
    assert inter.original["flags"] == 0  # not ephemeral: the defer decided, not the followup
    assert [m["content"] for m in inter.followups] == ["one more thing"]
    assert [m["content"] for m in fd.messages()] == ["thought it over", "one more thing"]


# --- rules -------------------------------------------------------------------------------------


async def test_an_ack_after_the_deadline_is_unknown_interaction(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    fd.ack_deadline = 0.2
    bot.work_delay = 0.3
    await fd.slash("late")
    error = await fd.wait_for(lambda: bot.outcomes.get("late"))
    assert isinstance(error, discord.NotFound)
    assert error.code == 10062
    # one for the missed deadline, one for the late callback
    assert [e["code"] for e in fd.errors] == [10062, 10062]


async def test_an_expired_token_cannot_edit(fake_discord: FakeDiscord, bot: FakeBot) -> None:
    fd = fake_discord
    fd.token_life = 0.3
    bot.work_delay = 0.2
    inter = await fd.slash("late")
    error = await fd.wait_for(lambda: bot.outcomes.get("late"))
    assert inter.response_type == 5
    assert isinstance(error, discord.HTTPException)
    assert (error.status, error.code) == (401, 50027)


async def test_content_over_2000_characters_is_invalid_form_body(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    await fd.slash("post", {"length": 2001})
    error = await fd.wait_for(lambda: bot.outcomes.get("post"))
    assert isinstance(error, discord.HTTPException)
    assert (error.status, error.code) == (400, 50035)
    assert "2000 or fewer" in error.text
    assert last_message(fd, content="p" * 2001) is None


async def test_upload_over_10_mib_is_request_entity_too_large(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    await fd.slash("post", {"size": 10 * 1024 * 1024 + 1})
    error = await fd.wait_for(lambda: bot.outcomes.get("post"))
    assert isinstance(error, discord.HTTPException)
    assert (error.status, error.code) == (413, 40005)
    inter = await fd.slash("post", {"size": 10 * 1024 * 1024})
    await fd.wait_for(lambda: inter.original and inter.original["content"] == "posted")
    posted = last_message(fd, content="p" * 10)
    assert posted is not None
    assert posted["attachments"][0]["size"] == 10 * 1024 * 1024


async def raw(
    fd: FakeDiscord, method: str, path: str, body: Any, *, token: bool = True
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bot {fd.token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, fd.api_base + path, json=body, headers=headers) as response,
    ):
        return (
            response.status,
            await response.json() if response.content_type == "application/json" else None,
        )


def button_rows(rows: int, per_row: int, id_length: int = 8) -> list[dict[str, Any]]:
    return [
        {
            "type": 1,
            "components": [
                {
                    "type": 2,
                    "style": 1,
                    "label": "b",
                    "custom_id": f"{r}-{i}-".ljust(id_length, "x"),
                }
                for i in range(per_row)
            ],
        }
        for r in range(rows)
    ]


@pytest.fixture
async def silent_command(fake_discord: FakeDiscord) -> str:
    """A command registered over raw REST with no bot behind it: the test answers by hand."""
    fd = fake_discord
    path = f"/applications/{fd.application_id}/guilds/{fd.guild_id}/commands"
    status, _ = await raw(
        fd, "PUT", path, [{"name": "raw", "description": "answered by the test", "type": 1}]
    )
    assert status == 200
    return "raw"


async def test_raw_callbacks_enforce_components_and_single_ack(
    fake_discord: FakeDiscord, silent_command: str
) -> None:
    fd = fake_discord
    inter = await fd.slash(silent_command)
    callback = f"/interactions/{inter.id}/{inter.token}/callback?with_response=1"
    for rows, per_row, id_length, where in [
        (1, 1, 101, "custom_id"),
        (6, 1, 8, "components"),
        (1, 6, 8, "components"),
    ]:
        status, body = await raw(
            fd,
            "POST",
            callback,
            {
                "type": 4,
                "data": {"content": "x", "components": button_rows(rows, per_row, id_length)},
            },
            token=False,
        )
        assert (status, body["code"]) == (400, 50035), (rows, per_row, id_length)
        assert where in str(body["errors"])
    status, body = await raw(
        fd, "POST", callback, {"type": 4, "data": {"content": "", "components": []}}, token=False
    )
    assert (status, body["code"]) == (400, 50006)
    status, body = await raw(fd, "POST", callback, {"type": 6}, token=False)
    assert status == 400  # a deferred update only exists for components
    status, body = await raw(
        fd,
        "POST",
        callback,
        {"type": 4, "data": {"content": "ok", "components": button_rows(5, 5)}},
        token=False,
    )
    assert status == 200
    assert body["resource"]["message"]["content"] == "ok"
    assert body["interaction"]["response_message_id"] == inter.original_id
    status, body = await raw(fd, "POST", callback, {"type": 5}, token=False)
    assert (status, body["code"]) == (400, 40060)
    assert [e["code"] for e in fd.errors] == [50035, 50035, 50035, 50006, 50035, 40060]


async def test_rest_needs_the_bot_token_and_known_routes(fake_discord: FakeDiscord) -> None:
    fd = fake_discord
    status, body = await raw(fd, "GET", "/users/@me", None, token=False)
    assert (status, body["code"]) == (401, 0)
    status, body = await raw(fd, "GET", "/guilds/1/bans", None)
    assert status == 404
    assert "no GET route" in body["message"]
    status, body = await raw(
        fd,
        "PUT",
        f"/applications/{fd.application_id}/commands",
        [{"name": "Bad Name", "description": "d"}],
    )
    assert (status, body["code"]) == (400, 50035)


async def test_a_channel_without_send_permission_refuses_posts(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    read_only = fd.add_channel("gallery", permissions=1 << 10 | 1 << 16 | 1 << 31)
    inter = await fd.slash("post", channel_id=read_only["id"])
    error = await fd.wait_for(lambda: bot.outcomes.get("post"))
    assert isinstance(error, discord.Forbidden)
    assert error.code == 50013
    assert int(inter.payload["app_permissions"]) & (1 << 11) == 0
    await fd.wait_for(lambda: inter.original and inter.original["content"] == "could not post")


async def test_a_thread_takes_send_messages_in_threads_not_send_messages(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    send, in_threads = 1 << 11, 1 << 38
    everything = (1 << 53) - 1
    announcements = fd.add_channel("announcements", permissions=everything & ~send)
    discussion = fd.add_thread(announcements["id"], "discussion")
    await fd.wait_for(lambda: bot.get_channel(int(discussion["id"])))  # THREAD_CREATE arrived
    inter = await fd.slash("post", channel_id=discussion["id"])
    await fd.wait_for(lambda: inter.original and inter.original["content"] == "posted")
    assert inter.payload["channel"]["type"] == 11  # the interaction happened in a thread
    assert int(inter.payload["app_permissions"]) & (send | in_threads) == in_threads
    [post] = [m for m in fd.messages(discussion["id"]) if m["content"] == "p" * 10]
    assert post["channel_id"] == discussion["id"]

    closed = fd.add_thread(fd.add_channel("quiet", everything & ~in_threads)["id"], "closed")
    await fd.wait_for(lambda: bot.get_channel(int(closed["id"])))
    inter = await fd.slash("post", channel_id=closed["id"])
    error = await fd.wait_for(lambda: bot.outcomes.get("post"))
    assert isinstance(error, discord.Forbidden)
    assert error.code == 50013
    await fd.wait_for(lambda: inter.original and inter.original["content"] == "could not post")
    [refusal] = fd.errors
    assert refusal["path"] == f"/channels/{closed['id']}/messages"
    fd.errors.remove(refusal)


# --- gateway and transport faults ------------------------------------------------------------


async def test_reconnect_resumes_and_replays_missed_events(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    (session,) = fd.sessions
    fd.request_reconnect()
    async with asyncio.timeout(5):
        await bot.resumed.wait()
    resumes = [e for e in fd.gateway_log if e["payload"].get("op") == 6]
    assert resumes
    assert resumes[0]["payload"]["d"]["session_id"] == session.id
    assert [c["path"] for c in fd.gateway_connections] == ["/gateway", "/resume-gateway"]
    bot.resumed.clear()
    await fd.drop_connections()
    # dispatched while no socket is open, so it can only arrive as a replay after RESUME
    inter = await imagine(fd, "while away")
    assert bot.resumed.is_set()
    delivered = [
        e["time"]
        for e in fd.gateway_log
        if e["payload"].get("t") == "INTERACTION_CREATE" and e["payload"]["d"]["id"] == inter.id
    ]
    last_resume = max(e["time"] for e in fd.gateway_log if e["payload"].get("op") == 6)
    assert len(delivered) == 1
    assert delivered[0] > last_resume
    assert len(fd.sessions) == 1
    assert fd.errors == []


async def test_an_invalidated_session_identifies_again(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    fd.invalidate_sessions()
    await fd.wait_for_session(count=2)
    identifies = [e for e in fd.gateway_log if e["payload"].get("op") == 2]
    assert len(identifies) == 2
    await imagine(fd, "after a new session")


async def test_rest_failures_are_retried(fake_discord: FakeDiscord, bot: FakeBot) -> None:
    fd = fake_discord
    fd.fail_next("POST", r"^/channels/\d+/messages$", status=500)
    fd.fail_next("POST", r"^/webhooks/", status=429, retry_after=0.05)
    original = (await imagine(fd)).original
    assert original is not None
    await fd.click(original["id"], "fd:up:1")
    await fd.wait_for(lambda: last_message(fd, content="channel 1"))
    statuses = [(c["path"].split("/")[1], c["status"]) for c in fd.calls if c["method"] == "POST"]
    assert ("channels", 500) in statuses
    assert ("channels", 200) in statuses
    assert ("webhooks", 429) in statuses
    assert ("webhooks", 200) in statuses
    assert fd.errors == []


async def test_a_restarted_bot_answers_buttons_of_the_old_one(
    fake_discord: FakeDiscord, discord_errors: list[logging.LogRecord]
) -> None:
    fd = fake_discord
    first = FakeBot(fd)
    async with run_bot(first, fd):
        original = (await imagine(fd)).original
    assert original is not None
    second = FakeBot(fd)
    async with run_bot(second, fd):
        await fd.click(original["id"], "fd:up:3")
        await fd.wait_for(lambda: last_message(fd, content="channel 3"))
    assert len(fd.sessions) == 2
    assert fd.errors == []


async def test_gateway_speaks_plain_json_and_refuses_a_wrong_token(
    fake_discord: FakeDiscord,
) -> None:
    fd = fake_discord
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(fd.gateway_url + "?v=10&encoding=json") as ws:
            hello = await ws.receive_json(timeout=2)
            assert hello["op"] == 10
            assert hello["d"]["heartbeat_interval"] > 0
            await ws.send_json({"op": 1, "d": None})
            assert await ws.receive_json(timeout=2) == {"op": 11}
            await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 0, "properties": {}}})
            closing = await ws.receive(timeout=2)
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 4004
        async with session.ws_connect(fd.gateway_url + "?v=10&encoding=json") as ws:
            await ws.receive_json(timeout=2)
            await ws.send_json({"op": 8, "d": {"guild_id": fd.guild_id}})
            await ws.receive(timeout=2)
            assert ws.close_code == 4003  # not authenticated
    assert fd.sessions == []


async def test_subcommand_options_are_typed_and_resolved(fake_discord: FakeDiscord) -> None:
    fd = fake_discord
    alice = fd.add_user("alice")
    command = {
        "name": "settings",
        "description": "settings",
        "options": [
            {
                "type": 1,
                "name": "set",
                "description": "change one",
                "options": [
                    {"type": 6, "name": "who", "description": "user", "required": True},
                    {
                        "type": 4,
                        "name": "level",
                        "description": "1-10",
                        "min_value": 1,
                        "max_value": 10,
                    },
                    {"type": 7, "name": "where", "description": "channel"},
                ],
            }
        ],
    }
    status, _ = await raw(fd, "PUT", f"/applications/{fd.application_id}/commands", [command])
    assert status == 200
    values = {"who": alice, "level": 3, "where": fd.channel_id}
    inter = await fd.slash("settings set", values, user=alice)
    data = inter.payload["data"]
    assert "guild_id" not in data  # a global command
    (sub,) = data["options"]
    assert sub["name"] == "set"
    assert [(o["name"], o["value"]) for o in sub["options"]] == [
        ("who", alice["id"]),
        ("level", 3),
        ("where", fd.channel_id),
    ]
    assert data["resolved"]["users"][alice["id"]]["username"] == "alice"
    assert alice["id"] in data["resolved"]["members"]
    assert fd.channel_id in data["resolved"]["channels"]
    with pytest.raises(ValueError, match="outside"):
        await fd.slash("settings set", {"who": alice, "level": 11})
    with pytest.raises(LookupError, match="no subcommand"):
        await fd.slash("settings reset", {})


# --- modals, context menus, reactions, DMs, member permissions ---------------------------------


async def test_a_modal_is_recorded_validated_and_submitted_back(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    alice = fd.add_user("alice")
    opened = await fd.slash("feedback", user=alice)
    modal = await fd.wait_for(lambda: opened.modal)
    assert opened.response_type == 9
    assert opened.original is None  # a modal is no message
    assert (modal["custom_id"], modal["title"]) == ("fd:feedback", "Feedback")
    label, row = modal["components"]
    assert (label["type"], label["label"], label["component"]["type"]) == (18, "Your idea", 4)
    assert label["component"]["value"] == "a cat"
    assert (row["type"], row["components"][0]["label"]) == (1, "Name")
    assert [label["id"], label["component"]["id"], row["id"], row["components"][0]["id"]] == [
        1,
        2,
        3,
        4,
    ]
    with pytest.raises(ValueError, match="required"):
        await fd.submit_modal(opened, {"idea": ""})
    with pytest.raises(ValueError, match=r"3\.\.50"):
        await fd.submit_modal(opened, {"idea": "no"})
    with pytest.raises(ValueError, match="no input"):
        await fd.submit_modal(opened, {"colour": "red"})
    with pytest.raises(ValueError, match="only to the user"):
        await fd.submit_modal(opened, {}, user=fd.add_user("bob"))
    submit = await fd.submit_modal(opened, {"nick": "al"})  # the idea keeps its prefill
    await fd.wait_for(lambda: submit.original)
    assert submit.type == 5
    assert submit.payload["data"] == {
        "custom_id": "fd:feedback",
        "components": [
            {
                "type": 18,
                "id": 1,
                "component": {"type": 4, "id": 2, "custom_id": "idea", "value": "a cat"},
            },
            {
                "type": 1,
                "id": 3,
                "components": [{"type": 4, "id": 4, "custom_id": "nick", "value": "al"}],
            },
        ],
    }
    assert "message" not in submit.payload  # it came from a slash command
    assert submit.response_type == 4
    assert submit.original is not None
    assert submit.original["content"] == "idea=a cat nick=al"
    metadata = submit.original["interaction_metadata"]
    assert (metadata["type"], metadata["user"]["id"]) == (5, alice["id"])
    assert metadata["triggering_interaction_metadata"]["id"] == opened.id
    with pytest.raises(ValueError, match="closed"):
        await fd.submit_modal(opened, {})
    with pytest.raises(ValueError, match="got no modal"):
        await fd.submit_modal(submit, {})
    assert fd.errors == []


async def test_a_modal_opened_from_a_button_updates_its_message(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    inter = await fd.slash("rename")
    original = await fd.wait_for(lambda: inter.original)
    click = await fd.click(original["id"], "fd:rename")
    await fd.wait_for(lambda: click.modal)
    submit = await fd.submit_modal(click, {"idea": "a dog"})
    await fd.wait_for(lambda: fd.message(original["id"])["content"] == "idea=a dog nick=")
    assert submit.payload["message"]["id"] == original["id"]
    assert submit.response_type == 7
    assert submit.original_id == original["id"]
    assert fd.errors == []


async def test_a_bot_that_defers_first_cannot_open_a_modal(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    inter = await fd.slash("slowform")
    error = await fd.wait_for(lambda: bot.outcomes.get("slowform"))
    assert isinstance(bot.outcomes["slowform local"], discord.InteractionResponded)
    assert isinstance(error, discord.HTTPException)
    assert (error.status, error.code) == (400, 40060)
    assert inter.response_type == 5
    assert inter.modal is None
    [refusal] = fd.errors
    assert refusal["code"] == 40060
    fd.errors.remove(refusal)


async def test_raw_modal_callbacks_follow_discords_rules(
    fake_discord: FakeDiscord, silent_command: str
) -> None:
    fd = fake_discord
    inter = await fd.slash(silent_command)
    callback = f"/interactions/{inter.id}/{inter.token}/callback"

    def text_input(**extra: Any) -> dict[str, Any]:
        return {"type": 4, "custom_id": "t", "style": 1, **extra}

    def row(*items: dict[str, Any]) -> dict[str, Any]:
        return {"type": 1, "components": list(items)}

    def modal(components: list[Any], title: str = "Form") -> dict[str, Any]:
        return {"type": 9, "data": {"custom_id": "m", "title": title, "components": components}}

    label_with_label = {"type": 18, "label": "L", "component": text_input(label="again")}
    for body, where in [
        (modal([row(text_input(label="x"))], title="t" * 46), "title"),
        (modal([]), "components"),
        (modal([row(text_input(label="x", custom_id=f"t{i}")) for i in range(6)]), "components"),
        (modal([row(text_input(label="a"), text_input(label="b", custom_id="u"))]), "components"),
        (modal([row(text_input(label="x" * 46))]), "label"),
        (modal([row(text_input(label="x", style=3))]), "style"),
        (modal([row(text_input(label="x", max_length=4001))]), "max_length"),
        (modal([row(text_input(label="x", max_length=3, value="long"))]), "value"),
        (modal([label_with_label]), "label"),
        (modal([{"type": 18, "label": "L", "component": {"type": 2}}]), "type"),
    ]:
        status, answer = await raw(fd, "POST", callback, body, token=False)
        assert (status, answer["code"]) == (400, 50035), where
        assert where in str(answer["errors"]), where
    good = modal([{"type": 18, "label": "L", "component": text_input(max_length=5)}])
    status, _ = await raw(fd, "POST", callback, good, token=False)
    assert status == 204
    assert inter.modal is not None
    with pytest.raises(ValueError, match=r"0\.\.5"):
        await fd.submit_modal(inter, {"t": "too long"})
    submit = await fd.submit_modal(inter, {"t": "ok"})
    answer_at = f"/interactions/{submit.id}/{submit.token}/callback"
    for kind in (9, 6, 7):  # no modal on a modal, no message update without a message
        status, _ = await raw(
            fd, "POST", answer_at, modal([row(text_input(label="x"))]) | {"type": kind}, token=False
        )
        assert status == 400, kind
    status, _ = await raw(
        fd, "POST", answer_at, {"type": 4, "data": {"content": "thanks"}}, token=False
    )
    assert status == 204
    assert submit.original is not None
    fd.errors.clear()


async def test_a_message_context_menu_command_gets_the_message_resolved(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    (menu,) = [c for c in fd.registered_commands(fd.guild_id) if c["type"] == 3]
    assert (menu["name"], menu["description"], menu["options"]) == ("Describe", "", [])
    original = (await imagine(fd, "a fox")).original
    assert original is not None
    alice = fd.add_user("alice")
    inter = await fd.message_command("Describe", original["id"], user=alice)
    await fd.wait_for(lambda: inter.original)
    data = inter.payload["data"]
    assert (data["id"], data["name"], data["type"], data["target_id"]) == (
        menu["id"],
        "Describe",
        3,
        original["id"],
    )
    assert data["guild_id"] == fd.guild_id
    assert data["resolved"]["messages"][original["id"]]["content"] == "**a fox**"
    assert inter.original is not None
    assert inter.original["content"] == f"{original['id']}: **a fox**"
    assert inter.original["type"] == 23  # CONTEXT_MENU_COMMAND
    assert inter.original["interaction_metadata"]["target_message_id"] == original["id"]
    with pytest.raises(LookupError, match="not registered"):
        await fd.message_command("Nope", original["id"])
    with pytest.raises(LookupError, match="no message"):
        await fd.message_command("Describe", "1")
    with pytest.raises(ValueError, match="ephemeral"):
        await fd.message_command("Describe", inter.original["id"])  # alice's, not the owner's
    assert fd.errors == []


async def test_context_menu_commands_register_with_discords_rules(
    fake_discord: FakeDiscord,
) -> None:
    fd = fake_discord
    path = f"/applications/{fd.application_id}/commands"
    status, stored = await raw(
        fd, "PUT", path, [{"name": "Make Art", "type": 3}, {"name": "Who Is", "type": 2}]
    )
    assert status == 200
    assert [(c["name"], c["type"], c["description"]) for c in stored] == [
        ("Make Art", 3, ""),
        ("Who Is", 2, ""),
    ]
    for bad in [
        {"name": "Make Art", "type": 3, "description": "no"},
        {"name": "Make Art", "type": 3, "options": [{"type": 3, "name": "x", "description": "x"}]},
        {"name": "m" * 33, "type": 3},
        {"name": "Make Art", "type": 7},
    ]:
        status, body = await raw(fd, "PUT", path, [bad])
        assert (status, body["code"]) == (400, 50035), bad
    status, body = await raw(fd, "PUT", path, [{"name": f"M{i}", "type": 3} for i in range(6)])
    assert (status, body["code"]) == (400, 50035)


async def test_reactions_are_shown_and_dispatched_to_the_reactions_intent(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    alice = fd.add_user("alice")
    original = (await imagine(fd)).original
    assert original is not None
    await fd.react(original["id"], "✉️", user=alice)
    (event,) = await fd.wait_for(lambda: bot.outcomes.get("reactions"))
    assert (event.message_id, event.user_id, str(event.emoji)) == (
        int(original["id"]),
        int(alice["id"]),
        "✉️",
    )
    assert event.member is not None
    assert event.member.id == int(alice["id"])
    assert fd.message(original["id"])["reactions"] == [
        {
            "count": 1,
            "count_details": {"burst": 0, "normal": 1},
            "me": False,
            "me_burst": False,
            "emoji": {"id": None, "name": "✉️"},
            "burst_colors": [],
        }
    ]
    [sent] = [
        e["payload"]["d"] for e in fd.gateway_log if e["payload"].get("t") == "MESSAGE_REACTION_ADD"
    ]
    assert sent["message_author_id"] == fd.bot_user["id"]
    assert (sent["guild_id"], sent["channel_id"], sent["burst"], sent["type"]) == (
        fd.guild_id,
        fd.channel_id,
        False,
        0,
    )
    await fd.react(original["id"], "✉️", user=alice)  # once per user and emoji
    assert fd.message(original["id"])["reactions"][0]["count"] == 1

    # the bot's own reaction, through PUT .../reactions/{emoji}/@me
    inter = await fd.message_command("Describe", original["id"])
    await fd.wait_for(lambda: len(bot.outcomes["reactions"]) == 2)
    await fd.wait_for(lambda: inter.original)
    keys = [
        (r["emoji"]["name"], r["count"], r["me"]) for r in fd.message(original["id"])["reactions"]
    ]
    assert keys == [("✉️", 1, False), ("✉", 1, True)]
    await fd.unreact(original["id"], "✉️", user=alice)
    assert [r["emoji"]["name"] for r in fd.message(original["id"])["reactions"]] == ["✉"]
    assert fd.errors == []


async def test_a_bot_without_the_reactions_intent_gets_no_reaction_events(
    fake_discord: FakeDiscord, discord_errors: list[logging.LogRecord]
) -> None:
    fd = fake_discord
    intents = discord.Intents.default()
    intents.guild_reactions = False
    client = FakeBot(fd, intents=intents)
    async with run_bot(client, fd):
        original = (await imagine(fd)).original
        assert original is not None
        await fd.react(original["id"], "👍")
        await asyncio.sleep(0.1)
    assert fd.message(original["id"])["reactions"][0]["count"] == 1
    (session,) = fd.sessions
    assert not session.intents & (1 << 10)
    assert "MESSAGE_REACTION_ADD" not in [p["t"] for p in session.sent]
    assert "reactions" not in client.outcomes


async def test_dms_are_sent_edited_and_refused_when_closed(
    fake_discord: FakeDiscord, bot: FakeBot
) -> None:
    fd = fake_discord
    alice, bob = fd.add_user("alice"), fd.add_user("bob")
    inter = await fd.slash("dm", user=alice)
    await fd.wait_for(lambda: inter.original and inter.original["content"] == "sent")
    (dm,) = fd.dm_messages(alice["id"])
    assert dm["content"] == "hello again"
    assert "guild_id" not in dm
    assert dm["attachments"][0]["filename"] == "a.png"
    assert [e["content"] for e in dm["edits"]] == ["hello again"]
    assert fd.dm_messages(bob["id"]) == []
    assert [m["content"] for m in fd.messages()] == ["sent"]  # only the ephemeral reply
    status, channel = await raw(fd, "POST", "/users/@me/channels", {"recipient_id": alice["id"]})
    assert status == 200
    assert (channel["id"], channel["type"]) == (dm["channel_id"], 1)
    assert [u["id"] for u in channel["recipients"]] == [alice["id"]]
    assert "guild_id" not in channel

    fd.block_dms(bob["id"])
    inter = await fd.slash("dm", user=bob)
    error = await fd.wait_for(lambda: bot.outcomes.get("dm"))
    assert isinstance(error, discord.Forbidden)
    assert (error.status, error.code) == (403, 50007)
    await fd.wait_for(lambda: inter.original and inter.original["content"] == "your DMs are closed")
    assert fd.dm_messages(bob["id"]) == []
    [refusal] = fd.errors
    assert refusal["code"] == 50007
    fd.errors.remove(refusal)


async def test_members_can_be_given_permissions(fake_discord: FakeDiscord, bot: FakeBot) -> None:
    fd = fake_discord
    manage_guild, manage_messages = 1 << 5, 1 << 13
    moderator = fd.add_user("mod", permissions=manage_guild | manage_messages)
    plain = fd.add_user("plain")
    await fd.wait_for(lambda: len(bot.get_guild(int(fd.guild_id)).roles) == 3)  # type: ignore[union-attr]
    asked = await fd.slash("whoami", user=moderator)
    await fd.wait_for(lambda: asked.original)
    assert int(asked.payload["member"]["permissions"]) & (manage_guild | manage_messages) == (
        manage_guild | manage_messages
    )
    assert asked.original is not None
    assert asked.original["content"] == "manage_guild=True manage_messages=True"
    asked = await fd.slash("whoami", user=plain)
    await fd.wait_for(lambda: asked.original)
    assert int(asked.payload["member"]["permissions"]) & (manage_guild | manage_messages) == 0
    assert asked.original is not None
    assert asked.original["content"] == "manage_guild=False manage_messages=False"
    admin = fd.add_user("admin", permissions=1 << 3)
    asked = await fd.slash("whoami", user=admin)
    assert int(asked.payload["member"]["permissions"]) == (1 << 53) - 1
    await fd.wait_for(lambda: asked.original)
    assert fd.errors == []

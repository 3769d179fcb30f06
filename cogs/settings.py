"""/settings: a private panel of a member's settings (stylize, version, Raw, Remix, Draft, the
speed, a suffix, Reset); ``/settings scope:server`` the server's defaults and locks, for members
with Manage Server. Every click saves at once and redraws the panel."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError, user_message
from bot.preferences import (
    LOCKABLE,
    SPEEDS,
    STYLIZE,
    SUFFIX_LIMIT,
    VARY,
    VISIBILITY,
    Preferences,
    merge,
    models_of,
    parameters,
)
from bot.tree import log_failure, reply_privately

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)

TOGGLES = {"raw": "Raw Mode", "remix": "Remix Mode", "draft": "Draft Mode"}
NAMES = {"version": "Version", "stylize": "Stylize", "speed": "Speed", "vary": "Variation",
         "visibility": "Visibility", **TOGGLES}  # fmt: skip
VARY_LABELS = {"strong": "High Variation Mode", "subtle": "Low Variation Mode"}
VISIBILITY_LABELS = {
    "public": "Results in the channel",
    "dm": "Results by DM",
    "ephemeral": "Results only I can see",
}
DEFAULT = "default"


def _style(on: bool) -> discord.ButtonStyle:
    return discord.ButtonStyle.success if on else discord.ButtonStyle.secondary


def panel(
    bot: ImagineBot, scope: str, values: Preferences, locked: frozenset[str]
) -> discord.ui.View:
    """The panel for ``scope`` ('me' or 'server'); a member's locked settings are disabled."""
    view = discord.ui.View(timeout=None)
    member = scope == "me"

    def off(name: str) -> bool:
        return member and name in locked

    versions = models_of(bot.settings.environ)
    if versions:
        options = [discord.SelectOption(label="Default version", value=DEFAULT)] + [
            discord.SelectOption(label=f"Version {v}", value=v, default=values.version == v)
            for v in versions
        ]
        view.add_item(PanelSelect(scope, "version", options, disabled=off("version")))
    stylize = [discord.SelectOption(label="Stylize default (100)", value=DEFAULT)] + [
        discord.SelectOption(
            label=f"Stylize {name} ({number})", value=name, default=values.stylize == name
        )
        for name, number in STYLIZE.items()
    ]
    view.add_item(PanelSelect(scope, "stylize", stylize, disabled=off("stylize")))
    for name, label in TOGGLES.items():
        on = bool(getattr(values, name))
        view.add_item(PanelButton(scope, name, "", label, _style(on), off(name), row=2))
    for vary in VARY:
        on = (values.vary or "strong") == vary
        view.add_item(
            PanelButton(scope, "vary", vary, VARY_LABELS[vary], _style(on), off("vary"), 2)
        )
    for speed in SPEEDS:
        on = values.speed == speed
        view.add_item(
            PanelButton(scope, "speed", speed, f"{speed.title()} Mode", _style(on), off("speed"), 3)
        )
    # one button that shows where results go and moves to the next choice (5 rows is all a
    # message has: a select here would push the server's locks out)
    shown = values.visibility or "public"
    following = VISIBILITY[(VISIBILITY.index(shown) + 1) % len(VISIBILITY)]
    view.add_item(PanelButton(scope, "visibility", following, VISIBILITY_LABELS[shown],
                              discord.ButtonStyle.primary, off("visibility"), 4 if member else 3))  # fmt: skip
    if member:
        view.add_item(PanelButton(scope, "suffix", "", "Suffix…", discord.ButtonStyle.secondary,
                                  False, 4))  # fmt: skip
    else:
        locks = [
            discord.SelectOption(label=f"Lock {NAMES[name]}", value=name, default=name in locked)
            for name in LOCKABLE
        ]
        view.add_item(PanelSelect(scope, "locks", locks, multiple=True, row=4))
    view.add_item(PanelButton(scope, "reset", "", "Reset Settings", discord.ButtonStyle.danger,
                              False, 4 if member else 3))  # fmt: skip
    return view


def where(visibility: str | None) -> str:
    return {
        "dm": "results are sent to your DMs",
        "ephemeral": "results are shown only to you, in the channel",
    }.get(visibility or "", "results are posted in the channel")


def summary(scope: str, values: Preferences, locked: frozenset[str]) -> str:
    appended = " ".join(parameters(values).values())
    if values.suffix:
        appended = f"{appended} {values.suffix}".strip()
    who = "This server's defaults" if scope == "server" else "Your settings"
    lines = [f"**{who}.** Added to each prompt that does not set them: {appended or 'nothing'}."]
    lines.append(
        f"Remix Mode is {'on' if values.remix else 'off'}; V1–V4 use "
        f"{VARY_LABELS[values.vary or 'strong']}; {where(values.visibility)}."
    )
    if locked:
        names = ", ".join(NAMES[n] for n in LOCKABLE if n in locked)
        lines.append(f"Locked by the server: {names}.")
    return "\n".join(lines)


class PanelButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"pref:(?P<scope>me|server):(?P<name>[a-z]+):(?P<value>[a-z ]*)",
):
    def __init__(
        self, scope: str, name: str, value: str, label: str = "", style: discord.ButtonStyle =
        discord.ButtonStyle.secondary, disabled: bool = False, row: int | None = None,
    ) -> None:  # fmt: skip
        self.scope, self.name, self.value = scope, name, value
        super().__init__(
            discord.ui.Button(label=label or name, style=style, disabled=disabled,
                              custom_id=f"pref:{scope}:{name}:{value}"),
            row=row,
        )  # fmt: skip

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
        match: re.Match[str], /,
    ) -> PanelButton:  # fmt: skip
        return cls(match["scope"], match["name"], match["value"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("ImagineBot", interaction.client)
        try:
            if self.name == "suffix":
                current = await bot.preferences.get(f"user:{interaction.user.id}")
                await interaction.response.send_modal(SuffixModal(current.suffix))
                return
            await change(bot, interaction, self.scope, self.name, [self.value])
        except Exception as exc:
            log_failure(f"settings {self.name}", interaction, exc)
            await reply_privately(interaction, user_message(exc))


class PanelSelect(
    discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]],
    template=r"prefs:(?P<scope>me|server):(?P<name>[a-z]+)",
):
    def __init__(
        self, scope: str, name: str, options: list[discord.SelectOption] | None = None, *,
        disabled: bool = False, multiple: bool = False, row: int | None = None,
    ) -> None:  # fmt: skip
        self.scope, self.name = scope, name
        options = options or [discord.SelectOption(label=name, value=DEFAULT)]
        select: discord.ui.Select[discord.ui.View] = discord.ui.Select(
            custom_id=f"prefs:{scope}:{name}", options=options, disabled=disabled,
            min_values=0 if multiple else 1, max_values=len(options) if multiple else 1,
            placeholder=NAMES.get(name, "Locked settings"),
        )  # fmt: skip
        super().__init__(select, row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
        match: re.Match[str], /,
    ) -> PanelSelect:  # fmt: skip
        return cls(match["scope"], match["name"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("ImagineBot", interaction.client)
        values = list(self.item.values)
        try:
            await change(bot, interaction, self.scope, self.name, [str(v) for v in values])
        except Exception as exc:
            log_failure(f"settings {self.name}", interaction, exc)
            await reply_privately(interaction, user_message(exc))


class SuffixModal(discord.ui.Modal, title="Your suffix"):
    def __init__(self, current: str) -> None:
        super().__init__(timeout=None, custom_id="pref:suffix")
        self.text: discord.ui.TextInput[SuffixModal] = discord.ui.TextInput(
            label="Added to the end of each prompt", default=current or None, required=False,
            max_length=SUFFIX_LIMIT, custom_id="suffix",
        )  # fmt: skip
        self.add_item(self.text)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("ImagineBot", interaction.client)
        try:
            await change(bot, interaction, "me", "suffix", [" ".join(self.text.value.split())])
        except Exception as exc:
            log_failure("settings suffix", interaction, exc)
            await reply_privately(interaction, user_message(exc))


def _manages(interaction: discord.Interaction[Any]) -> bool:
    return interaction.guild_id is not None and interaction.permissions.manage_guild


async def change(
    bot: ImagineBot, interaction: discord.Interaction[Any], scope: str, name: str, values: list[str]
) -> None:
    """Save one click of a panel and redraw it."""
    store = bot.preferences
    if scope == "server" and not _manages(interaction):
        raise UserFacingError("Only members with Manage Server can change this server's settings.")
    key = f"guild:{interaction.guild_id}" if scope == "server" else f"user:{interaction.user.id}"
    server = (
        await store.get(f"guild:{interaction.guild_id}") if interaction.guild_id else Preferences()
    )
    if scope == "me" and name in server.locked:
        raise UserFacingError(
            f"This server has locked {NAMES[name]}; its setting applies to everyone."
        )
    current = await store.get(key)
    value = values[0] if values else DEFAULT
    if name == "reset":
        updated = Preferences(locked=current.locked) if scope == "server" else Preferences()
    elif name in TOGGLES:
        updated = current.with_(**{name: not getattr(current, name)})
    elif name == "speed":
        updated = current.with_(speed=None if current.speed == value else value)
    elif name == "vary":
        updated = current.with_(vary=value if value in VARY else None)
    elif name == "visibility":
        updated = current.with_(visibility=value if value in VISIBILITY else None)
    elif name == "stylize":
        updated = current.with_(stylize=value if value in STYLIZE else None)
    elif name == "version":
        updated = current.with_(version=value if value in models_of(bot.settings.environ) else None)
    elif name == "locks" and scope == "server":
        updated = current.with_(locked=tuple(v for v in LOCKABLE if v in values))
    elif name == "suffix":
        updated = current.with_(suffix=value[:SUFFIX_LIMIT] if value != DEFAULT else "")
    else:
        raise UserFacingError("That setting is not one I know; run /settings again.")
    await store.put(key, updated)
    log.info("settings %s: %s set by user %s", key, name, interaction.user.id)
    if scope == "server":
        shown, locked = updated, frozenset(updated.locked)
    else:
        effective = merge(server, updated)
        shown, locked = effective.values, effective.locked
    await interaction.response.edit_message(
        content=summary(scope, shown, locked), view=panel(bot, scope, shown, locked)
    )


SCOPES = [
    app_commands.Choice(name="Mine", value="me"),
    app_commands.Choice(name="This server's defaults (Manage Server)", value="server"),
]


class Settings(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(PanelButton, PanelSelect)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(PanelButton, PanelSelect)

    @app_commands.command(name="settings", description="Your settings, added to every prompt")
    @app_commands.describe(scope="Yours (default), or this server's defaults and locks")
    @app_commands.choices(scope=SCOPES)
    async def settings(
        self, interaction: discord.Interaction[Any], scope: app_commands.Choice[str] | None = None
    ) -> None:
        which = scope.value if scope is not None else "me"
        store = self.bot.preferences
        if which == "server":
            if not _manages(interaction):
                raise UserFacingError(
                    "Only members with Manage Server can change this server's settings."
                )
            values = await store.get(f"guild:{interaction.guild_id}")
            locked = frozenset(values.locked)
        else:
            effective = await store.effective(interaction.user.id, interaction.guild_id)
            values, locked = effective.values, effective.locked
        await interaction.response.send_message(
            summary(which, values, locked), view=panel(self.bot, which, values, locked),
            ephemeral=True,
        )  # fmt: skip


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Settings(bot))

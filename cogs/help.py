"""/help: how to prompt, every parameter with its range, and what the buttons do."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

if TYPE_CHECKING:
    from bot.app import ImagineBot

PROMPTING = (
    "`/imagine prompt: a lighthouse at dusk, oil painting --ar 16:9`\n"
    "Describe the picture in plain words; parameters go at the end. Attach an image (or start the "
    "prompt with image links) to start from it. `hot:: dog` splits concepts, `hot::2 dog` weighs "
    "the first twice; `a {red, blue} car` makes one job per choice.\n"
    "`/blend` mixes 2 to 5 attached images into four new ones (square, portrait or landscape)."
)

TOOLS = (
    "`/describe image:` (or `link:`) four prompts that could have made the image, shaped to its "
    "`--ar`; **1️⃣–4️⃣** imagine one, **🔄** reads the image again\n"
    "`/shorten prompt:` five shorter prompts that keep the words that count (parameters kept); "
    "**1️⃣–5️⃣** imagine one\n"
    "`/settings` your stylize, version, Raw, Remix, Draft, speed and a suffix, added to each "
    "prompt that does not set them; High/Low Variation Mode for V1–V4; results in the channel, "
    "by DM or only for you (`scope: server` for a server's defaults and locks)\n"
    "React ✉️ to a result (or Apps → **Show job**) for its prompt, seed and settings\n"
    "`/gallery` a private link to every image you made: search, download, copy a prompt, delete"
)

PARAMETERS = (
    "`--ar W:H` aspect ratio, up to 4:1 or 1:4 (default 1:1)\n"
    "`--no a, b` things to leave out\n"
    "`--seed N` 0–4294967295, the same seed repeats a result\n"
    "`--chaos N` 0–100, spreads the four images' seeds\n"
    "`--stylize N` 0–1000 (default 100)\n"
    "`--quality Q` .25, .5, 1 or 2\n"
    "`--repeat N` 1–40, run the prompt N times (within your job limit)\n"
    "`--iw N` 0–3, how much an image prompt counts\n"
    "`--tile` seamless pattern (local engine) · `--v N` / `--niji N` a model, if the server maps it\n"
    "`--draft` half the steps, smaller: fast drafts (U then **Enhance** re-renders at full quality)\n"
    "`--sref URL [--sw 0–1000]` style reference · `--oref URL [--ow 1–1000]` omni reference "
    "(local engine; `--cref`/`--cw` too)\n"
    "`--stop 10–100` (local engine), `--style raw` (local engine: less guidance), `--weird`: "
    "what an engine does not honour is named as ignored under the result"
)

BUTTONS = (
    "**U1–U4** the image alone, full size · **V1–V4** four variations of one image · "
    "**🔄** four new images from the same prompt\n"
    "After U: **Vary (Strong/Subtle)** · **Zoom Out 2x/1.5x** · **Custom Zoom** (a prompt with "
    "`--zoom 1–2`) · **⬅️ ➡️ ⬆️ ⬇️** extend the picture · **Make Square** · "
    "**Upscale (Subtle)** doubles the size and keeps the details · **Upscale (Creative)** "
    "doubles it and adds details · **Vary (Region)** a private link to an editor: paint the part "
    "to change, edit the prompt, send\n"
    "**❌ Cancel** under a job that is waiting or rendering (yours, or any for moderators). With "
    "Remix Mode on, V, Vary and 🔄 first let you edit the prompt.\n"
    "Buttons keep working on old messages, even after the bot restarts. A used U button turns blue."
)


def help_embed(max_jobs: int) -> discord.Embed:
    embed = discord.Embed(
        title="Making images", description=PROMPTING, colour=discord.Colour.blurple()
    )
    embed.add_field(name="Tools", value=TOOLS, inline=False)
    embed.add_field(name="Parameters", value=PARAMETERS, inline=False)
    embed.add_field(name="Buttons", value=BUTTONS, inline=False)
    embed.add_field(
        name="Limits",
        value=f"Up to {max_jobs} unfinished jobs per person. `/info` shows the queue and your jobs.",
        inline=False,
    )
    return embed


class Help(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="help", description="How to prompt, the parameters, and the buttons")
    async def help(self, interaction: discord.Interaction[Any]) -> None:
        embed = help_embed(self.bot.settings.max_jobs_per_user)
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Help(bot))

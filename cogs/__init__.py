"""One cog per feature; cogs reach the Imagine service only through the bot's ImagineClient."""

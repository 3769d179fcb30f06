"""REST routes under /api/v10: login, commands, guild, interaction callbacks and interaction
webhooks (channel routes: channels.py; DMs: dms.py; the bot's reactions: reactions.py). Handlers check what Discord checks and answer in its shapes."""

from __future__ import annotations

from aiohttp import web

from tests.fakediscord import commands, dms, interactions
from tests.fakediscord.channels import ChannelApi
from tests.fakediscord.http import API, body_of, json_response, list_body, no_content, uploads_of
from tests.fakediscord.reactions import ReactionApi
from tests.fakediscord.records import FakeInteraction
from tests.fakediscord.rules import DiscordError
from tests.fakediscord.state import World


def routes(world: World) -> list[web.RouteDef]:
    api, channels, reactions = RestApi(world), ChannelApi(world), ReactionApi(world)
    app_path = "/applications/{app_id}"
    guild_commands = app_path + "/guilds/{guild_id}/commands"
    message_path = "/channels/{channel_id}/messages/{message_id}"
    webhook_message = "/webhooks/{app_id}/{token}/messages/{message_id}"
    table = [
        ("GET", "/users/@me", api.me),
        ("POST", "/users/@me/channels", api.create_dm),
        ("GET", "/users/{user_id}", api.user),
        ("GET", "/oauth2/applications/@me", api.application),
        ("GET", "/applications/@me", api.application),
        ("GET", "/gateway", api.gateway),
        ("GET", "/gateway/bot", api.gateway),
        ("GET", app_path + "/commands", api.list_commands),
        ("PUT", app_path + "/commands", api.overwrite_commands),
        ("POST", app_path + "/commands", api.upsert_command),
        ("GET", guild_commands, api.list_commands),
        ("PUT", guild_commands, api.overwrite_commands),
        ("POST", guild_commands, api.upsert_command),
        ("GET", app_path + "/commands/{command_id}", api.get_command),
        ("PATCH", app_path + "/commands/{command_id}", api.edit_command),
        ("DELETE", app_path + "/commands/{command_id}", api.delete_command),
        ("GET", guild_commands + "/{command_id}", api.get_command),
        ("PATCH", guild_commands + "/{command_id}", api.edit_command),
        ("DELETE", guild_commands + "/{command_id}", api.delete_command),
        ("GET", "/guilds/{guild_id}", api.guild),
        ("GET", "/guilds/{guild_id}/channels", api.guild_channels),
        ("GET", "/guilds/{guild_id}/members/{user_id}", api.guild_member),
        ("GET", "/channels/{channel_id}", channels.channel),
        ("POST", "/channels/{channel_id}/typing", channels.typing),
        ("GET", "/channels/{channel_id}/messages", channels.channel_history),
        ("POST", "/channels/{channel_id}/messages", channels.create_message),
        ("GET", message_path, channels.get_message),
        ("PATCH", message_path, channels.edit_message),
        ("DELETE", message_path, channels.delete_message),
        ("PUT", message_path + "/reactions/{emoji}/@me", reactions.add_own),
        ("DELETE", message_path + "/reactions/{emoji}/@me", reactions.remove_own),
        ("POST", "/interactions/{interaction_id}/{token}/callback", api.callback),
        ("POST", "/webhooks/{app_id}/{token}", api.followup),
        ("GET", webhook_message, api.get_webhook_message),
        ("PATCH", webhook_message, api.edit_webhook_message),
        ("DELETE", webhook_message, api.delete_webhook_message),
    ]
    defs = [web.route(method, API + path, handler) for method, path, handler in table]
    return [*defs, web.route("*", API + "/{tail:.*}", api.unknown_route)]


class RestApi:
    def __init__(self, world: World) -> None:
        self.world = world

    async def unknown_route(self, request: web.Request) -> web.Response:
        raise DiscordError(
            404, 0, f"404: Not Found (the fake Discord has no {request.method} route here)"
        )

    # --- login ------------------------------------------------------------------------------

    async def me(self, request: web.Request) -> web.Response:
        extra = {"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"}
        return json_response({**self.world.bot_user, **extra})

    async def user(self, request: web.Request) -> web.Response:
        found = self.world.users.get(request.match_info["user_id"])
        if found is None and request.match_info["user_id"] == self.world.application_id:
            found = self.world.bot_user
        if found is None:
            raise DiscordError(404, 10013, "Unknown User")
        return json_response(found)

    async def create_dm(self, request: web.Request) -> web.Response:
        """POST /users/@me/channels {"recipient_id"}: open (or reuse) the DM with a user."""
        return json_response(dms.open_dm(self.world, str(body_of(request).get("recipient_id"))))

    async def application(self, request: web.Request) -> web.Response:
        w = self.world
        return json_response(
            {
                "id": w.application_id,
                "name": w.bot_user["username"],
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": 1 << 19,
                "owner": w.owner,
                "team": None,
                "bot": w.bot_user,
                "rpc_origins": [],
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "tags": [],
                "approximate_guild_count": 1,
                "integration_types_config": {"0": {}},
            }
        )

    async def gateway(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return json_response(
            {"url": self.world.gateway_url, "shards": 1, "session_start_limit": limit}
        )

    # --- application commands ---------------------------------------------------------------

    def _scope(self, request: web.Request) -> str | None:
        if request.match_info["app_id"] != self.world.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        guild_id = request.match_info.get("guild_id")
        if guild_id is not None and guild_id != self.world.guild_id:
            raise DiscordError(403, 50001, "Missing Access")
        return guild_id

    async def list_commands(self, request: web.Request) -> web.Response:
        return json_response(self.world.commands.get(self._scope(request), []))

    async def overwrite_commands(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        return json_response(commands.overwrite(self.world, scope, list_body(request)))

    async def upsert_command(self, request: web.Request) -> web.Response:
        status, command = commands.upsert(self.world, self._scope(request), body_of(request))
        return json_response(command, status)

    async def get_command(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        return json_response(commands.find(self.world, scope, request.match_info["command_id"]))

    async def edit_command(self, request: web.Request) -> web.Response:
        scope, command_id = self._scope(request), request.match_info["command_id"]
        return json_response(commands.edit(self.world, scope, command_id, body_of(request)))

    async def delete_command(self, request: web.Request) -> web.Response:
        commands.delete(self.world, self._scope(request), request.match_info["command_id"])
        return no_content()

    # --- guild -----------------------------------------------------------------

    def _guild(self, request: web.Request) -> None:
        if request.match_info["guild_id"] != self.world.guild_id:
            raise DiscordError(404, 10004, "Unknown Guild")

    async def guild(self, request: web.Request) -> web.Response:
        self._guild(request)
        guild = self.world.guild()
        return json_response({k: v for k, v in guild.items() if k not in ("members", "channels")})

    async def guild_channels(self, request: web.Request) -> web.Response:
        self._guild(request)
        return json_response(list(self.world.channels.values()))

    async def guild_member(self, request: web.Request) -> web.Response:
        self._guild(request)
        user_id = request.match_info["user_id"]
        if user_id == self.world.application_id:
            return json_response(self.world.member(self.world.bot_user))
        if user_id not in self.world.users:
            raise DiscordError(404, 10007, "Unknown Member")
        return json_response(self.world.member(self.world.users[user_id]))

    # --- interactions -----------------------------------------------------------------------

    async def callback(self, request: web.Request) -> web.Response:
        info = request.match_info
        result = interactions.respond(
            self.world, info["interaction_id"], info["token"], body_of(request), uploads_of(request)
        )
        if request.query.get("with_response") in ("1", "true", "True"):
            return json_response(result)
        return no_content()

    def _webhook(self, request: web.Request) -> FakeInteraction:
        return interactions.webhook_interaction(
            self.world, request.match_info["app_id"], request.match_info["token"]
        )

    async def followup(self, request: web.Request) -> web.Response:
        inter = self._webhook(request)
        message = interactions.followup(self.world, inter, body_of(request), uploads_of(request))
        if request.query.get("wait") in ("1", "true", "True"):
            return json_response(message.payload)
        return no_content()

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        inter = self._webhook(request)
        message = interactions.webhook_message(self.world, inter, request.match_info["message_id"])
        return json_response(message.payload)

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        inter = self._webhook(request)
        message = interactions.webhook_message(self.world, inter, request.match_info["message_id"])
        interactions.edit_webhook_message(
            self.world, message, body_of(request), uploads_of(request)
        )
        return json_response(message.payload)

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        inter = self._webhook(request)
        message = interactions.webhook_message(self.world, inter, request.match_info["message_id"])
        self.world.delete_message(message)
        return no_content()

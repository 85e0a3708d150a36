"""rasa-sdk's plugin package (rasa_sdk.plugin imports ``rasa_sdk_plugins`` and calls
``init_hooks``): the action server refuses calls without the shared token
(bot/action_auth.py). `rasa run actions` started from the project directory finds it."""

import pluggy

from bot.action_auth import expected_token, require_token

hookimpl = pluggy.HookimplMarker("rasa_sdk")


class _RequireToken:
    @hookimpl
    def attach_sanic_app_extensions(self, app) -> None:
        require_token(app, expected_token())


def init_hooks(manager: pluggy.PluginManager) -> None:
    manager.register(_RequireToken())

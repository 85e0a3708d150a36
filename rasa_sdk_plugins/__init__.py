"""rasa-sdk's plugin package (rasa_sdk.plugin imports ``rasa_sdk_plugins`` and calls
``init_hooks``): the action server refuses calls without the shared token
(bot/action_auth.py). `rasa run actions` started from the project directory finds it."""

import pluggy

from bot.action_auth import expected_token, require_token
from bot.production import refuse_demo_settings

hookimpl = pluggy.HookimplMarker("rasa_sdk")


class _RequireToken:
    @hookimpl
    def attach_sanic_app_extensions(self, app) -> None:
        require_token(app, expected_token())


def init_hooks(manager: pluggy.PluginManager) -> None:
    refuse_demo_settings("action server")  # VETBOT_ENV=production: no demo settings
    manager.register(_RequireToken())

"""The gateway: the aiohttp application WeChat users reach (H5 binding page, /healthz;
the /wechat webhook joins it later). Start it with ``python -m bot.gateway``."""

from bot.gateway.app import create_app, run_gateway

__all__ = ["create_app", "run_gateway"]

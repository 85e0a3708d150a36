"""``python -m bot.gateway [--host H]``: serve the gateway on VETBOT_GATEWAY_PORT."""

from __future__ import annotations

import argparse
import logging
from typing import List, Optional

from bot.gateway.app import run_gateway
from bot.production import refuse_demo_settings
from bot.settings import Settings


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.gateway", description="荣军助手 gateway")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default 127.0.0.1; 0.0.0.0 behind a proxy)")
    args = parser.parse_args(argv)
    refuse_demo_settings("gateway")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_gateway(Settings.from_env(), host=args.host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`vetbot`: the command line of 荣军助手.

    vetbot train      train a model when none matches the data
    vetbot serve      run Rasa and the action server in the foreground; Ctrl-C stops all
    vetbot chat       chat in the terminal with the running assistant
    vetbot validate   rasa data validate; unexpected warnings fail
    vetbot evaluate   score the NLU on the held-out split and write the report
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional


def cmd_train(args: argparse.Namespace) -> int:
    from bot.training import train

    return train(force=args.force)


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.serve import serve

    return serve()


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.chat import chat

    return chat(sender=args.sender)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from bot.evaluation import evaluate

    return evaluate(model=args.model, out_dir=args.out)


def cmd_validate(args: argparse.Namespace) -> int:
    from bot.validate import validate

    return validate()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vetbot", description="荣军助手 (vetbot)")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train the model if the data changed")
    train.add_argument("--force", action="store_true", help="retrain even if nothing changed")
    train.set_defaults(func=cmd_train)

    serve = sub.add_parser("serve", help="run the whole assistant in the foreground")
    serve.set_defaults(func=cmd_serve)

    chat = sub.add_parser("chat", help="chat with the running assistant in the terminal")
    chat.add_argument("--sender", default=None, help="conversation id (default: a new one)")
    chat.set_defaults(func=cmd_chat)

    validate = sub.add_parser("validate", help="rasa data validate, failing on unexpected warnings")
    validate.set_defaults(func=cmd_validate)

    evaluate = sub.add_parser("evaluate", help="evaluate the NLU on the held-out split")
    evaluate.add_argument("--model", default=None, help="model file (default: the latest in models/)")
    evaluate.add_argument("--out", default="docs/evaluation", help="report directory")
    evaluate.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    # No internet at run time: Rasa's telemetry stays off for every process we start.
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""`python -m bot`: serve the NLU models on Triton, or run the whole bot.

python -m bot triton     Triton on the model repository named in endpoints.yml
python -m bot run        train if the data changed, then Triton, actions, Rasa and the web widget together
                         (--replicas N: N Rasa processes behind HAProxy, with PostgreSQL and Redis)
python -m bot widget     serve the chat widget and its demo page
python -m bot shell      chat in the terminal with the running bot (its shell channel)
python -m bot telegram   long-poll Telegram and let the running bot answer
python -m bot export     logged user messages as NLU YAML to review, or conversations as test stories
python -m bot report     conversations, intents, fallback rate and confidence for a period (md + png)
python -m bot secrets    the services' shared secrets as shell exports: eval "$(python -m bot secrets)"
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

from bot import replicas, secrets, services, shell, widget_server
from bot.conversation_log import cli as conversation_log_cli
from bot.supervisor import ServiceFailed, Supervisor, handle_stop_signals
from bot.telegram import polling as telegram_polling
from nlu import archive
from nlu.settings import TritonSettings
from nlu.training import tracking
from nlu.triton import server as triton_server

RUN_DIR = Path(".run")


def triton(args: argparse.Namespace) -> None:
    settings = TritonSettings.load(args.endpoints)
    triton_server.exec_server(
        Path(args.model_repository or settings.model_repository),
        http_port=args.http_port or settings.http_port,
        grpc_port=args.grpc_port or settings.grpc_port,
        metrics_port=args.metrics_port or settings.metrics_port,
        host=args.host,
        api_key=secrets.load(RUN_DIR)[secrets.TRITON_API_KEY],
    )


def widget(args: argparse.Namespace) -> int:
    try:
        server = widget_server.make_server(args.rasa_url, host=args.host, port=args.port)
    except widget_server.WidgetBundleMissing as error:
        print(error, file=sys.stderr)
        return 1
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def terminal_chat(args: argparse.Namespace) -> int:
    return shell.chat(args.rasa_url, secrets.load(RUN_DIR)[secrets.RASA_AUTH_TOKEN])


def telegram(args: argparse.Namespace) -> int:
    return telegram_polling.main(args.rasa_url)


def print_secrets(_: argparse.Namespace) -> None:
    """For a shell that runs Rasa by hand (`make shell`): the same secrets `make run` uses."""
    for name, value in secrets.load(RUN_DIR).items():
        print(f"export {name}={shlex.quote(value)}")


def run(args: argparse.Namespace) -> int:
    tokens = secrets.export(RUN_DIR)  # first: endpoints.yml names them, and every service gets them
    env = dict(os.environ)
    settings = TritonSettings.load(args.endpoints)
    rasa_url = f"http://localhost:{args.port}"
    if args.telegram:
        try:
            telegram_polling.polling_settings()
        except telegram_polling.PollingStopped as error:
            print(f"Cannot poll Telegram: {error}", file=sys.stderr)
            return 2
    if not args.skip_train:
        # Rasa compares the fingerprints of data and config with the newest model and only
        # trains what changed; with nothing changed this takes seconds.
        before = archive.newest_archive()
        subprocess.run([services.RASA, "train", "--endpoints", args.endpoints], check=True, env=env)
        trained = archive.newest_archive()
        if trained is not None and trained != before:  # a new Rasa model: its file goes on its MLflow run
            tracking.link_model_archive(trained)
    supervisor = Supervisor(RUN_DIR)
    if args.replicas > 1:
        stages = replicas.stack(
            args.replicas,
            args.tritons,
            args.action_workers,
            args.postgres_port,
            args.postgres_dir,
            args.redis_port,
            args.port,
            args.actions_port,
            args.widget_port,
            args.host,
            args.endpoints,
            args.credentials,
            env,
            RUN_DIR,
        )
    else:
        stages = [
            [
                services.triton(
                    settings.http_port,
                    settings.grpc_port,
                    settings.metrics_port,
                    endpoints=args.endpoints,
                    host=args.host,
                    env=env,
                )
            ],
            [services.actions(args.actions_port, host=args.host, workers=args.action_workers, env=env)],
            [
                services.rasa(
                    args.port,
                    tokens[secrets.RASA_AUTH_TOKEN],
                    args.endpoints,
                    args.credentials,
                    host=args.host,
                    cors=services.widget_origins(args.widget_port),
                    env=env,
                )
            ],
        ]
    stages.append([services.widget(args.widget_port, rasa_url, host=args.host, env=env)])
    if args.telegram:
        stages.append([services.telegram_poller(rasa_url, env=env)])
    started = [service for stage in stages for service in stage]
    handle_stop_signals()  # `kill`, `docker stop`: stop the services as Ctrl-C does
    try:
        for stage in stages:
            for service in stage:
                print(f"Starting {service.name} (log: {RUN_DIR / service.name}.log) ...", flush=True)
            supervisor.start(*stage)
        print(_banner(args, tokens[secrets.RASA_AUTH_TOKEN]), flush=True)
        supervisor.watch()  # restarts a service that crashes; returns only through Ctrl-C or SIGTERM
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    except ServiceFailed as error:
        name = next((s.name for s in started if s.name in str(error)), started[0].name)
        print(f"\n{error}. Last lines of {RUN_DIR / name}.log:\n{supervisor.tail(name)}", file=sys.stderr)
        return 1
    finally:
        supervisor.stop()
    return 0


def _banner(args: argparse.Namespace, token: str) -> str:
    url, widget_port = f"http://localhost:{args.port}", args.widget_port
    telegram_line = "\n  Telegram: polling; message your bot in the Telegram app" if args.telegram else ""
    scale = (
        f"\n  {args.replicas} Rasa replicas behind HAProxy; locks in Redis; conversations and shop in PostgreSQL"
        f" ({args.postgres_dir}):\n  export LOG_STORE_URL={replicas.log_store_url(args.postgres_port)}"
        if args.replicas > 1
        else ""
    )
    return f"""
The support bot is running.{scale}
  Chat in a browser: http://localhost:{widget_port}{telegram_line}
  Chat over REST: curl -s {url}/webhooks/rest/webhook -d '{{"sender": "me", "message": "where is my order 12345?"}}'
  Parse a text:   curl -s "{url}/model/parse?token=$RASA_AUTH_TOKEN" -d '{{"text": "where is my order 12345?"}}'
  Rasa's HTTP API needs its token: export RASA_AUTH_TOKEN={token}   (kept in {RUN_DIR / secrets.SECRETS_FILE})
  Chat in a terminal (second shell): make shell
Press Ctrl-C to stop everything."""


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {text}")
    return value


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", default=os.environ.get("RASA_ENDPOINTS", "endpoints.yml"))
    host = argparse.ArgumentParser(add_help=False)
    host.add_argument(
        "--host",
        default=os.environ.get("BOT_HOST", services.LOCALHOST),
        help="address to listen on (default 127.0.0.1, or $BOT_HOST; 0.0.0.0 opens every interface)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "triton", parents=[host], help="serve the model repository with the bundled Triton server"
    )
    serve.add_argument("--model-repository", type=Path)
    serve.add_argument("--http-port", type=int)
    serve.add_argument("--grpc-port", type=int)
    serve.add_argument("--metrics-port", type=int)
    serve.set_defaults(handler=triton)

    start = commands.add_parser(
        "run", parents=[host], help="train if needed, then start Triton, the action server and Rasa"
    )
    start.add_argument("--port", type=int, default=int(os.environ.get("RASA_PORT", 5005)))
    start.add_argument("--actions-port", type=int, default=int(os.environ.get("ACTIONS_PORT", 5055)))
    start.add_argument("--credentials", default="credentials.yml")
    start.add_argument("--skip-train", action="store_true", help="serve the newest model in models/ as it is")
    start.add_argument("--widget-port", type=int, default=int(os.environ.get("WIDGET_PORT", 8080)))
    start.add_argument("--telegram", action="store_true", help="also long-poll Telegram (needs TELEGRAM_BOT_TOKEN)")
    start.add_argument(
        "--replicas",
        type=_at_least_one,
        default=int(os.environ.get("REPLICAS", 1)),
        help="Rasa processes behind HAProxy, with PostgreSQL, a Redis lock store (default 1: one Rasa, nothing else)",
    )
    start.add_argument(
        "--tritons",
        type=int,
        choices=range(0, 5),
        default=1,
        help="Triton processes with --replicas (default 1; 0: use the one already serving endpoints.yml's url)",
    )
    start.add_argument("--postgres-port", type=int, default=int(os.environ.get("POSTGRES_PORT", 5433)))
    start.add_argument(
        "--postgres-dir",
        type=Path,
        default=Path(os.environ.get("POSTGRES_DIR", replicas.POSTGRES_DIR)),
        help=f"PostgreSQL's data with --replicas (default {replicas.POSTGRES_DIR}, kept across restarts)",
    )
    start.add_argument("--redis-port", type=int, default=int(os.environ.get("REDIS_PORT", 6380)))
    start.add_argument("--action-workers", type=_at_least_one, default=1, help="the action server's worker processes")
    start.set_defaults(handler=run)

    web = commands.add_parser("widget", parents=[host], help="serve the chat widget and a demo page that embeds it")
    web.add_argument("--port", type=int, default=int(os.environ.get("WIDGET_PORT", 8080)))
    web.add_argument("--rasa-url", default="http://localhost:5005", help="where the widget finds Rasa's socket.io")
    web.set_defaults(handler=widget)

    terminal = commands.add_parser("shell", help="chat in the terminal with the bot that `make run` serves")
    terminal.add_argument(
        "--rasa-url", default=f"http://localhost:{os.environ.get('RASA_PORT', 5005)}", help="the running bot"
    )
    terminal.set_defaults(handler=terminal_chat)

    poll = commands.add_parser("telegram", help="long-poll Telegram and hand each update to the running bot")
    poll.add_argument("--rasa-url", default="http://localhost:5005", help="the running bot (make run)")
    poll.set_defaults(handler=telegram)

    shared = commands.add_parser("secrets", help="print the services' shared secrets as shell exports (generated once)")
    shared.set_defaults(handler=print_secrets)

    conversation_log_cli.add_commands(commands)

    # `--endpoints` may also follow the command (python -m bot triton --endpoints e.yml).
    for sub in (serve, start):
        sub.add_argument("--endpoints", default=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.handler(args) or 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m bot`: serve the NLU models on Triton, or run the whole bot.

    python -m bot triton     Triton on the model repository named in endpoints.yml
    python -m bot run        train if the data changed, then Triton, actions, Rasa and the web widget together
    python -m bot widget     serve the chat widget and its demo page
    python -m bot telegram   long-poll Telegram and let the running bot answer
    python -m bot export     logged user messages as NLU YAML to review, or conversations as test stories
    python -m bot report     conversations, intents, fallback rate and confidence for a period (md + png)
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

from bot import log_cli, telegram_polling, widget_server
from bot.supervisor import Service, ServiceFailed, Supervisor, exit_on_sigterm
from nlu.triton import server as triton_server
from nlu.settings import TritonSettings

RUN_DIR = Path(".run")


def triton(args: argparse.Namespace) -> None:
    settings = TritonSettings.load(args.endpoints)
    triton_server.exec_server(
        Path(args.model_repository or settings.model_repository),
        http_port=args.http_port or settings.http_port,
        grpc_port=args.grpc_port or settings.grpc_port,
        metrics_port=args.metrics_port or settings.metrics_port,
    )


def widget(args: argparse.Namespace) -> int:
    try:
        server = widget_server.make_server(args.rasa_url, port=args.port)
    except widget_server.WidgetBundleMissing as error:
        print(error, file=sys.stderr)
        return 1
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def telegram(args: argparse.Namespace) -> int:
    return telegram_polling.main(args.rasa_url)


def run(args: argparse.Namespace) -> int:
    rasa = str(Path(sys.executable).with_name("rasa"))
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
        subprocess.run([rasa, "train", "--endpoints", args.endpoints], check=True)
    supervisor = Supervisor(RUN_DIR)
    services = [
        Service(
            "triton",
            [sys.executable, "-m", "bot", "triton", "--endpoints", args.endpoints],
            f"http://localhost:{settings.http_port}/v2/health/ready",
        ),
        Service(
            "actions",
            [rasa, "run", "actions", "--port", str(args.actions_port)],
            f"http://localhost:{args.actions_port}/health",
        ),
        Service(
            "rasa",
            [rasa, "run", "--enable-api", "--cors", "*", "--port", str(args.port), "--endpoints", args.endpoints,
             "--credentials", args.credentials],
            f"{rasa_url}/status",
        ),
        Service(
            "widget",
            [sys.executable, "-m", "bot", "widget", "--port", str(args.widget_port), "--rasa-url", rasa_url],
            f"http://localhost:{args.widget_port}/",
        ),
    ]
    if args.telegram:
        services.append(Service("telegram", [sys.executable, "-m", "bot", "telegram", "--rasa-url", rasa_url],
                                f"{rasa_url}/webhooks/telegram/"))
    exit_on_sigterm()  # `kill`, `docker stop`: stop the services as Ctrl-C does
    try:
        for service in services:
            print(f"Starting {service.name} (log: {RUN_DIR / service.name}.log) ...", flush=True)
            supervisor.start(service)
        print(_banner(args.port, args.widget_port, args.telegram), flush=True)
        supervisor.watch()
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    except ServiceFailed as error:
        name = next((s.name for s in services if s.name in str(error)), services[0].name)
        print(f"\n{error}. Last lines of {RUN_DIR / name}.log:\n{supervisor.tail(name)}", file=sys.stderr)
        return 1
    finally:
        supervisor.stop()
    return 0


def _banner(port: int, widget_port: int, telegram: bool) -> str:
    url = f"http://localhost:{port}"
    telegram_line = "\n  Telegram: polling; message your bot in the Telegram app" if telegram else ""
    return f"""
The support bot is running.
  Chat in a browser: http://localhost:{widget_port}{telegram_line}
  Chat over REST: curl -s {url}/webhooks/rest/webhook -d '{{"sender": "me", "message": "where is my order 12345?"}}'
  Parse a text:   curl -s {url}/model/parse -d '{{"text": "where is my order 12345?"}}'
  Chat in a terminal (second shell): make shell
Press Ctrl-C to stop everything."""


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", default=os.environ.get("RASA_ENDPOINTS", "endpoints.yml"))
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("triton", help="serve the model repository with the bundled Triton server")
    serve.add_argument("--model-repository", type=Path)
    serve.add_argument("--http-port", type=int)
    serve.add_argument("--grpc-port", type=int)
    serve.add_argument("--metrics-port", type=int)
    serve.set_defaults(handler=triton)

    start = commands.add_parser("run", help="train if needed, then start Triton, the action server and Rasa")
    start.add_argument("--port", type=int, default=int(os.environ.get("RASA_PORT", 5005)))
    start.add_argument("--actions-port", type=int, default=int(os.environ.get("ACTIONS_PORT", 5055)))
    start.add_argument("--credentials", default="credentials.yml")
    start.add_argument("--skip-train", action="store_true", help="serve the newest model in models/ as it is")
    start.add_argument("--widget-port", type=int, default=int(os.environ.get("WIDGET_PORT", 8080)))
    start.add_argument("--telegram", action="store_true", help="also long-poll Telegram (needs TELEGRAM_BOT_TOKEN)")
    start.set_defaults(handler=run)

    web = commands.add_parser("widget", help="serve the chat widget and a demo page that embeds it")
    web.add_argument("--port", type=int, default=int(os.environ.get("WIDGET_PORT", 8080)))
    web.add_argument("--rasa-url", default="http://localhost:5005", help="where the widget finds Rasa's socket.io")
    web.set_defaults(handler=widget)

    poll = commands.add_parser("telegram", help="long-poll Telegram and hand each update to the running bot")
    poll.add_argument("--rasa-url", default="http://localhost:5005", help="the running bot (make run)")
    poll.set_defaults(handler=telegram)

    log_cli.add_commands(commands)

    # `--endpoints` may also follow the command (python -m bot triton --endpoints e.yml).
    for sub in (serve, start):
        sub.add_argument("--endpoints", default=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.handler(args) or 0


if __name__ == "__main__":
    sys.exit(main())

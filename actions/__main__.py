"""`python -m actions`: the action server, which answers only Rasa (actions/server.py).

    ACTION_SERVER_TOKEN=<secret> python -m actions [--port 5055] [--host 127.0.0.1] [--workers 1]

It listens on 127.0.0.1 unless told otherwise ($ACTIONS_HOST, or --host, which wins), refuses to
start without ACTION_SERVER_TOKEN (exit code 2), and logs only warnings, errors and what the actions
did (one line per cancellation or return), never each request.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import List, Optional

from actions.server import TOKEN_VARIABLE, create

logger = logging.getLogger("actions")

DEFAULT_PORT = 5055
DEFAULT_HOST = "127.0.0.1"
HOST_VARIABLE = "ACTIONS_HOST"
MISSING_TOKEN = f"""\
python -m actions: {TOKEN_VARIABLE} is not set, and without it anyone who reaches this server could run
its actions (cancel orders, open tickets). Set it to a long random value, e.g.
  export {TOKEN_VARIABLE}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')
and give Rasa the same value: it sends it from endpoints.yml's action_endpoint headers
  action_endpoint:
    url: http://localhost:5055/webhook
    headers:
      Authorization: Bearer ${{{TOKEN_VARIABLE}}}
unquoted: Rasa substitutes ${{VARIABLES}} only in plain YAML scalars and sends a quoted one as written.
"""


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return number


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m actions", description="The action server, answering only Rasa.")
    cli.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    cli.add_argument(
        "--host",
        help=f"address to listen on; default ${HOST_VARIABLE}, else {DEFAULT_HOST} "
        "(0.0.0.0 for every interface, e.g. in a container)",
    )
    cli.add_argument("--workers", type=positive, default=1, help="server processes sharing the port; default 1")
    return cli


def main(argv: Optional[List[str]] = None) -> None:
    cli = parser()
    args = cli.parse_args(argv)
    token = os.environ.get(TOKEN_VARIABLE, "")
    if not token:
        cli.exit(2, MISSING_TOKEN)
    host = args.host or os.environ.get(HOST_VARIABLE) or DEFAULT_HOST
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    app = create(token)
    logger.info(
        "Action server on http://%s:%d with %d worker(s); every call but GET /health needs the header "
        "'Authorization: Bearer $%s'",
        host,
        args.port,
        args.workers,
        TOKEN_VARIABLE,
    )
    app.run(host, args.port, workers=args.workers, access_log=False, motd=False)


if __name__ == "__main__":
    main()

"""The action server's HTTP app: rasa_sdk's own, answering only callers that present the shared secret.

Anyone who can reach an action server can otherwise run its actions (cancel orders, open tickets)
with a conversation state of their making. Rasa presents the secret with every call: endpoints.yml's
`action_endpoint` sends the header `Authorization: Bearer ${ACTION_SERVER_TOKEN}` (unquoted, or Rasa
sends it literally). Only GET /health stays open, for health checks.
"""

from __future__ import annotations

import hmac
import logging
from typing import Optional

from rasa_sdk.endpoint import create_app
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

TOKEN_VARIABLE = "ACTION_SERVER_TOKEN"
HEADER = "Authorization"
OPEN_ROUTES = {("GET", "/health")}
REFUSAL = (
    f"This action server answers only calls with the header '{HEADER}: Bearer <{TOKEN_VARIABLE}>'. "
    f"Rasa sends it when endpoints.yml's action_endpoint has headers: "
    f"{{{HEADER}: Bearer ${{{TOKEN_VARIABLE}}}}} (unquoted: Rasa substitutes variables only in plain YAML "
    f"scalars) and Rasa runs with the action server's {TOKEN_VARIABLE}."
)


def create(token: str) -> Sanic:
    """rasa_sdk's app for the actions in this package, without CORS (no browser calls it), whose
    every route but GET /health answers 401 unless the request carries `token`."""
    if not token:
        raise ValueError(f"An empty {TOKEN_VARIABLE} would let anyone call the actions; set it to a long random value")
    app = create_app("actions", cors_origins=None)
    # Rasa opens a connection for every action call and, when its event loop is busy, writes the call
    # seconds later. Sanic closes a connection that stays silent for KEEP_ALIVE_TIMEOUT (5 s by
    # default): Rasa then logs "Cannot write to closing transport" and the customer gets an apology.
    # Wait for a new connection's call as long as for the rest of a request.
    app.config.KEEP_ALIVE_TIMEOUT = app.config.REQUEST_TIMEOUT
    expected = f"Bearer {token}".encode()

    @app.middleware("request")
    async def require_token(request: Request) -> Optional[HTTPResponse]:
        if (request.method, request.path) in OPEN_ROUTES:
            return None
        if hmac.compare_digest(request.headers.get(HEADER, "").encode(), expected):
            return None
        logger.warning(
            "Refused %s %s from %s: missing or wrong %s header", request.method, request.path, request.ip, HEADER
        )
        return response.json({"error": REFUSAL}, status=401, headers={"WWW-Authenticate": "Bearer"})

    return app

"""A small JSON-over-HTTP client for OpenAI-compatible servers (the standard library only, so that one
client is safe to share between threads: each request opens its own connection).

Every failure becomes an EngineError that says what happened and what to do: a refused connection, a
timeout, an HTTP error (with the server's own message), an answer that is not JSON.
"""
from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Optional

from .base import EngineError


@dataclass(frozen=True)
class Client:
    """One server: ``url`` is its OpenAI API base (``http://host:port/v1``)."""

    url: str
    timeout: float = 120.0
    api_key: Optional[str] = None

    def get(self, path: str) -> dict:
        return self._call(urllib.request.Request(self.url + path, headers=self._headers()))

    def post(self, path: str, body: dict) -> dict:
        """POST ``body`` as JSON, return the JSON answer. Raises EngineError."""
        data = json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method="POST",
                                         headers={"Content-Type": "application/json", **self._headers()})
        return self._call(request)

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _call(self, request) -> dict:
        where = request.full_url
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            raise EngineError(f"{where}: HTTP {err.code} {err.reason}: {_server_message(err)}") from None
        except urllib.error.URLError as err:
            reason = err.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise EngineError(f"{where}: no answer within {self.timeout:g} s") from None
            raise EngineError(f"{where}: cannot reach the server ({reason}); is it running? "
                              f"(scripts/vllm_server.sh start serves the embedded model)") from None
        except (socket.timeout, TimeoutError):
            raise EngineError(f"{where}: no answer within {self.timeout:g} s") from None
        except (ConnectionError, OSError, http.client.HTTPException) as err:
            raise EngineError(f"{where}: the connection failed ({type(err).__name__}: {err})") from None
        try:
            answer = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise EngineError(f"{where}: the answer is not JSON: {raw[:120]!r}") from None
        if not isinstance(answer, dict):
            raise EngineError(f"{where}: the answer is not a JSON object: {raw[:120]!r}")
        return answer


def _server_message(err: urllib.error.HTTPError) -> str:
    """The server's error message (OpenAI-style ``{"error": {"message": ...}}``), else its text."""
    try:
        raw = err.read()
    except (OSError, http.client.HTTPException):
        return "(no body)"
    try:
        body = json.loads(raw)
        message = body.get("error", body)
        message = message.get("message", message) if isinstance(message, dict) else message
        return str(message)[:500]
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return raw[:500].decode("utf-8", "replace")

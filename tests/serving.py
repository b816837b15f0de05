"""Servers for the serving-engine tests, all on 127.0.0.1.

* ``FakeServer``: a scripted OpenAI-compatible server in a thread (unit tests: errors, a server that
  ignores constraints, adversarial random text). Its behaviour is one function of the request body.
* ``vllm_server()``: the real vLLM CPU server on the embedded model, started by scripts/vllm_server.sh in
  its own virtual environment and stopped by its PID at the end of the test session. With
  LTLAGENT_VLLM_URL set, that server is used instead (nothing is started). Absent vLLM, the tests that
  need it skip, except in CI, where it must be there.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import pytest

from paths import REPO

MODEL = "fake-model"


class FakeServer:
    """``answer(body) -> (status, dict)`` answers /v1/completions; /v1/models lists ``MODEL``."""

    def __init__(self, answer: Callable[[dict], tuple[int, dict]]):
        self.answer, self.bodies = answer, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                if self.path == "/v1/models":
                    self.reply(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
                else:
                    self.reply(404, {"error": {"message": "Not Found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path != "/v1/completions":
                    self.reply(404, {"error": {"message": "Not Found"}})
                    return
                owner.bodies.append(body)
                status, answer = owner.answer(body)
                self.reply(status, answer)

            def reply(self, status: int, answer):
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(text: str, finish: str = "stop", token_ids=None, stop_reason=None) -> tuple[int, dict]:
    choice = {"index": 0, "text": text, "finish_reason": finish, "stop_reason": stop_reason}
    if token_ids is not None:
        choice["token_ids"] = token_ids
    return 200, {"choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": 1}}


# -- the real vLLM server -------------------------------------------------------------------------------

VENV_PYTHON = REPO / ".vllm-venv" / "bin" / "python"
TEST_PORT = os.environ.get("LTLAGENT_VLLM_TEST_PORT", "8019")
TEST_STATE = REPO / ".vllm" / "tests"


def vllm_available() -> bool:
    return bool(os.environ.get("LTLAGENT_VLLM_URL")) or VENV_PYTHON.exists()


def start_vllm() -> str:
    """Start the test server (scripts/vllm_server.sh, its own port and state) and return its URL."""
    env = {**os.environ, "PORT": TEST_PORT, "VLLM_STATE": str(TEST_STATE),
           "VLLM_ARGS": "--enable-prompt-tokens-details"}
    done = subprocess.run(["bash", str(REPO / "scripts" / "vllm_server.sh"), "start"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"the vLLM server did not start:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def stop_vllm() -> None:
    env = {**os.environ, "VLLM_STATE": str(TEST_STATE)}
    subprocess.run(["bash", str(REPO / "scripts" / "vllm_server.sh"), "stop"], env=env, cwd=REPO, timeout=120)


needs_vllm = pytest.mark.skipif(not vllm_available() and not os.environ.get("CI"),
                                reason="no vLLM here (scripts/vllm_server.sh setup, or set LTLAGENT_VLLM_URL)")

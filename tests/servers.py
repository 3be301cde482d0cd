"""Real servers on loopback for the notification tests: an SMTP server (aiosmtpd, with
STARTTLS and AUTH) and an HTTP server speaking Slack's incoming-webhook and Web API
(`chat.postMessage`) shapes, with scripted failures (429 + Retry-After, 500)."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(
    handler: type[BaseHTTPRequestHandler], port: int = 0, poll_interval: float = 0.5
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """A ThreadingHTTPServer on 127.0.0.1:`port` (0: a free one) serving in a daemon
    thread; `poll_interval` is how long `shut` may wait for it."""
    httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True)
    thread.start()
    return httpd, thread


def shut(httpd: ThreadingHTTPServer, thread: threading.Thread | None) -> None:
    """Stop what `serve` started and free its port."""
    httpd.shutdown()
    httpd.server_close()
    if thread is not None:
        thread.join(5)


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (openssl), trusted by the client through ca_file."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


# -- SMTP -------------------------------------------------------------------------------


class SmtpServer:
    """aiosmtpd on 127.0.0.1:port with STARTTLS required and AUTH LOGIN/PLAIN."""

    def __init__(self, port: int, cert: Path, key: Path, user: str = "aimon", password: str = "s3cret-pw"):
        self.port = port
        self.user = user
        self.password = password
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(str(cert), str(key))
        self._controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append(msg)  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def _auth(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.user
            and auth_data.password.decode() == self.password
        )
        # handled=False on failure: aiosmtpd then answers 535; True would leave the client waiting.
        return AuthResult(success=True) if ok else AuthResult(success=False, handled=False)

    def start(self) -> SmtpServer:
        from aiosmtpd.controller import Controller

        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=self._tls,
            require_starttls=True,
            authenticator=self._auth,
            auth_required=True,
            auth_require_tls=True,
            ready_timeout=10,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


# -- Slack ----------------------------------------------------------------------------------


@dataclass
class SlackRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic()
    status: int  # what the server answered


@dataclass
class SlackServer:
    """Answers POST /services/... (incoming webhook: 200 'ok') and
    POST /api/chat.postMessage ({"ok": true, ...}). `plan` scripts the next answers:
    a list of (status, headers) consumed one per request, then 200."""

    token: str = "xoxb-test-token-123"
    requests: list[SlackRequest] = field(default_factory=list)
    plan: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    port: int = 0
    _httpd: Any = None
    _thread: Any = None

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T0001/B0001/webhooksecret42"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def delivered(self) -> list[SlackRequest]:
        return [r for r in self.requests if r.status == 200]

    def start(self) -> SlackServer:
        server = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    body = json.loads(raw or b"{}")
                else:
                    from urllib.parse import parse_qsl

                    body = dict(parse_qsl(raw.decode()))
                with lock:
                    status, headers = server.plan.pop(0) if server.plan else (200, {})
                api = self.path.startswith("/api/")
                if api and status == 200 and self.headers.get("Authorization") != f"Bearer {server.token}":
                    status, payload = 200, {"ok": False, "error": "invalid_auth"}
                elif api:
                    payload = (
                        {"ok": True, "channel": "C0001", "ts": f"{time.time():.6f}"}
                        if status == 200
                        else {"ok": False, "error": "ratelimited" if status == 429 else "internal_error"}
                    )
                else:
                    payload = None
                server.requests.append(
                    SlackRequest(self.path, dict(self.headers.items()), body, time.monotonic(), status)
                )
                out = json.dumps(payload).encode() if payload is not None else (b"ok" if status == 200 else b"error")
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if payload is not None else "text/plain")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self._httpd, self._thread = serve(Handler, self.port)
        self.port = self._httpd.server_address[1]
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            shut(self._httpd, self._thread)
            self._httpd = None

"""A small OpenAI-compatible HTTP server that answers from a cassette.

Inputs: a cassette file (YAML or JSONL), a host, a port (0 picks a free one) and an
optional injected latency per chat completion. Output: a `ReplayServer` serving
`POST /v1/chat/completions` and `GET /v1/models` through `ReplayResponder`, so
benchmarks and tests exercise the real openai + instructor + HTTP path. Side
effects: binds a TCP socket and serves from a background thread (`start`) or the
calling thread (`serve_forever`, and `main` for the command line).
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tasks.llm.cassette import Cassette, ReplayResponder

IDLE_CONNECTION_TIMEOUT_S = 120.0
SHUTDOWN_POLL_S = 0.05


class _ReplayHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Keep-alive connections hold a handler thread until the client closes them;
    # closing the server must not wait for those.
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], responder: ReplayResponder) -> None:
        self.responder = responder
        super().__init__(address, _ReplayHandler)


class _ReplayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_TIMEOUT_S
    # Headers and body are separate writes; with Nagle on, each keep-alive answer
    # would wait ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _ReplayHTTPServer

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._serve(b"")

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            self._send(411, {"Content-Type": "text/plain"}, b"Content-Length required")
            return
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length) if length > 0 else b"")

    def _serve(self, body: bytes) -> None:
        status, headers, payload = self.server.responder.respond(
            self.command, self.path, dict(self.headers.items()), body
        )
        self._send(status, headers, payload)

    def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Stay quiet: the client's usage ledger records every call."""


class ReplayServer:
    """A bound replay server; start it in the background or serve in this thread."""

    def __init__(
        self,
        cassette: Cassette,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_s: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cassette = cassette
        self.responder = ReplayResponder(cassette, latency_s=latency_s, sleep=sleep)
        self._httpd = _ReplayHTTPServer((host, port), self.responder)
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def url(self) -> str:
        """Base URL for an OpenAI client, such as `http://127.0.0.1:8123/v1`."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> ReplayServer:
        """Serve from a daemon thread; returns at once."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": SHUTDOWN_POLL_S},
                name="agentskiller-replay-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until `close()` or KeyboardInterrupt."""
        self._httpd.serve_forever(poll_interval=SHUTDOWN_POLL_S)

    def close(self) -> None:
        """Stop serving and release the socket; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def serve_cassette(
    cassette_path: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    latency_s: float = 0.0,
) -> ReplayServer:
    """Load a cassette and bind a replay server to it (not yet serving).

    Args:
        cassette_path: YAML or JSONL cassette.
        host: Interface to bind.
        port: TCP port; 0 picks a free one (read it from `.url`).
        latency_s: Sleep before each chat-completion answer.

    Returns:
        The bound server; call `.start()` or use it as a context manager.

    Raises:
        CassetteFormatError: the cassette is malformed.
        OSError: the port cannot be bound.
    """
    cassette = Cassette.load(Path(cassette_path))
    return ReplayServer(cassette, host=host, port=port, latency_s=latency_s)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: serve a cassette until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m tasks.llm.replay_server",
        description="Serve a cassette as an OpenAI-compatible chat-completions API.",
    )
    parser.add_argument("--cassette", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds before each answer"
    )
    args = parser.parse_args(argv)
    server = serve_cassette(
        args.cassette, host=args.host, port=args.port, latency_s=args.latency
    )
    kind = "hand-scripted" if server.cassette.scripted else "recorded"
    print(
        f"replaying {kind} cassette {args.cassette} ({len(server.cassette)} answers) "
        f"at {server.url}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

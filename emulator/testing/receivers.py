"""Loopback servers that tests point the emulator (or a parser) at, to see what reaches them."""

from __future__ import annotations

import http.server
import threading

__all__ = ["Bait"]


class Bait:
    """A loopback HTTP server that counts the requests an XML parser might make to it (an external
    DTD or entity fetch), answering each with an entity declaration. Call :meth:`close` when done."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        bait = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                bait.hits.append(self.path)
                body = b'<!ENTITY leak "FETCHED">'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                del format, args

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # A short poll interval: shutdown() waits for the next poll.
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()

"""Serves the interop test's django-cas-server on 127.0.0.1:PORT (the only argument):
Django's own development server (what `runserver --noreload` runs: threaded, HTTP/1.1
keep-alive), with two changes. Its request log is off, because a validation's request line
holds the ticket. And each connection sets TCP_NODELAY: the server writes a response's
headers and body in two sends, so on a connection bonenfant keeps alive, Nagle held the
body until bonenfant's delayed ACK, 40 ms per request (runserver: 48 ms per validation
through bonenfant, 5 ms straight)."""

import socket
import sys

import django
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application


class Handler(WSGIRequestHandler):
    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        """Quiet: the request line holds the ticket."""


def main():
    django.setup()
    server = ThreadedWSGIServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.set_app(get_wsgi_application())
    server.serve_forever()


if __name__ == "__main__":
    main()

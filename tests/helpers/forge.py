"""A test forge on a loopback address: the Actions Ping RPC exactly as
Forgejo and Gitea serve it, or one of the ways a forge fails.

What the forge answers, from its source (/work/notes/forge-facts.md §1):
the handler is Forgejo v15.0.3 routers/api/actions/ping/ping.go:18-38
(Gitea v1.26.3 the same), mounted at /api/actions by actions.go:14-21
with m.Post only (chi answers any other method 405, `Allow: POST`, empty
body: chi mux.go:520-528); connect-go v1.19.2 serves it:

  POST .../ping.v1.PingService/Ping, Content-Type application/json,
      {"data":"x"}          200, Content-Type: application/json (the
                            request's, canonicalized), Accept-Encoding: gzip
                            (protocol_connect.go:221-234), body protojson
                            {"data":"Hello, x!"} (its spacing is unstable on
                            purpose: `spaced` puts the space it may add);
                            with `Accept-Encoding: gzip` in the request the
                            body is gzip and Content-Encoding: gzip
                            (protocol.go:302-340)
      empty body            400 {"code":"invalid_argument","message":
                            "unmarshal message: zero-length payload is not a
                            valid JSON object"}
  Connect-Protocol-Version other than 1
                            400 {"code":"invalid_argument","message":
                            "Connect-Protocol-Version must be \\"1\\": got \\"2\\""}
  another Content-Type      415, Accept-Post: <every type>, empty body
                            (handler.go:291-294)
  another method            405, Allow: POST, empty body (chi)
  another path              404 text/plain "404 page not found\\n"

Connect's error bodies are application/json without a trailing newline.
Go's net/http adds Date and Content-Length, and no Server header.

Modes (Forge(mode=...); `mode` may be changed while it runs; `fail_first`
resets that many connections first, as a lossy path loses one):
  answer    the above
  refuse    nothing listens: connecting is refused
  hang      accepts, reads the request, never answers
  reset     reads the request, then closes with a TCP reset
  502       a reverse proxy whose forge is down: Traefik's proxy error
            handler (pkg/proxy/httputil, ErrorHandlerWithContext:
            w.WriteHeader(502); w.Write(http.StatusText(502))), Content-Type
            sniffed by Go: text/plain; charset=utf-8, body "Bad Gateway"
  other     200 with a web page that is not the Ping's reply (a captive
            portal, a login page in front of the forge)
  disabled  Actions off ([actions] ENABLED=false): the route is not
            mounted, the web router's HTML 404 page

`requests` keeps every request received (method, path, version,
headers, body) for the tests to check what the client sent.
"""

import email.utils
import gzip
import ipaddress
import json
import socket
import ssl
import struct
import threading

PING = "/api/actions/ping.v1.PingService/Ping"
PREFIX = "/api/actions/ping.v1.PingService/"
ACCEPT_POST = ("application/grpc, application/grpc+json, application/grpc+json; charset=utf-8, "
               "application/grpc+proto, application/grpc-web, application/grpc-web+json, "
               "application/grpc-web+json; charset=utf-8, application/grpc-web+proto, "
               "application/json, application/json; charset=utf-8, application/proto")
JSON_TYPES = ("application/json", "application/json; charset=utf-8")
# What Go's net/http writes for a request line it cannot parse (server.go,
# `fmt.Fprintf(c.rwc, "HTTP/1.1 "+publicErr+errorHeaders+publicErr)`).
GO_400 = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
          b"Connection: close\r\n\r\n400 Bad Request")
MODES = ("answer", "refuse", "hang", "reset", "502", "other", "disabled")
PAGE = (b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>"
        b"<body><form method=\"post\">Sign in to continue</form></body></html>\n")


class Forge:
    """A forge on `host` (a loopback address) and `port` (0: an ephemeral
    one), plain HTTP or TLS with `cert` = (cert.pem, key.pem); url() names it."""

    def __init__(self, mode="answer", host="127.0.0.1", cert=None, spaced=False, fail_first=0,
                 port=0, sandbox=False):
        """sandbox=True: `host` may be any address (0.0.0.0: all), for a
        network namespace of the test's own that has only a loopback."""
        if mode not in MODES:
            raise ValueError("mode: %r" % mode)
        if not (sandbox or ipaddress.ip_address(host).is_loopback):
            raise ValueError("loopback only: %r" % host)
        self.mode, self.host, self.spaced = mode, host, spaced
        self.fail_first = fail_first  # this many connections are reset first (a lossy path)
        self.requests = []
        self.connections = 0
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.context = None
        if cert is not None:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(*cert)
        self._held = []
        self._stop = threading.Event()
        self._thread = None
        if mode != "refuse":  # a bound socket that does not listen refuses
            self.sock.listen(16)
            self.sock.settimeout(0.05)
            self._thread = threading.Thread(target=self._serve, daemon=True)
            self._thread.start()

    def url(self, name="forge.azrak.io", path="/"):
        scheme = "https" if self.context is not None else "http"
        return "%s://%s:%d%s" % (scheme, name, self.port, path)

    # -- serving

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn, self.connections), daemon=True).start()

    def _one(self, conn, number):
        try:
            conn.settimeout(10)
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            request = _read_request(conn)
            if request is None:
                return conn.close()
            if request == "tls":  # a TLS handshake on the plain port: Go's net/http answers 400
                conn.sendall(GO_400)
                return conn.close()
            self.requests.append(request)
            if self.mode == "hang":
                self._held.append(conn)  # never answered; closed by close()
                return None
            if self.mode == "reset" or number <= self.fail_first:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return conn.close()  # no TLS close_notify: the reset is all
            conn.sendall(self._reply(request))
            conn.close()
        except (OSError, ssl.SSLError, ValueError):
            conn.close()  # the client gave up on us: that is what some tests do
        return None

    def _reply(self, req):
        if self.mode == "502":
            return _response(502, "Bad Gateway", {"Content-Type": "text/plain; charset=utf-8"},
                             b"Bad Gateway")
        if self.mode == "other":
            return _response(200, "OK", {"Content-Type": "text/html; charset=utf-8"}, PAGE)
        if self.mode == "disabled":
            return _response(404, "Not Found", {"Content-Type": "text/html; charset=utf-8"},
                             b"<!DOCTYPE html><html><body>Page Not Found</body></html>")
        return _connect_reply(req, self.spaced)

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.sock.close()
        for conn in self._held:
            conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read_request(conn):
    """-> {method, path, version, headers (lower-case keys), body}, "tls"
    for a TLS handshake's first record, or None."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
        if data[:1] == b"\x16" and not isinstance(conn, ssl.SSLSocket):
            return "tls"
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return {"method": method, "path": path, "version": version, "headers": headers,
            "body": body}


def _response(status, reason, headers, body):
    lines = ["HTTP/1.1 %d %s" % (status, reason)]
    fields = dict(headers)
    fields["Date"] = email.utils.formatdate(usegmt=True)
    fields["Content-Length"] = str(len(body))
    lines += ["%s: %s" % kv for kv in fields.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _connect_error(status, reason, code, message):
    body = json.dumps({"code": code, "message": message}, separators=(",", ":")).encode()
    return _response(status, reason, {"Content-Type": "application/json"}, body)


def _connect_reply(req, spaced):
    """connect-go's unary Connect protocol, for the Ping service only."""
    if req["method"] != "POST":
        return _response(405, "Method Not Allowed", {"Allow": "POST"}, b"")
    if req["path"] != PING:
        return _response(404, "Not Found", {"Content-Type": "text/plain; charset=utf-8",
                                            "X-Content-Type-Options": "nosniff"},
                         b"404 page not found\n")
    version = req["headers"].get("connect-protocol-version")
    if version is not None and version != "1":
        return _connect_error(400, "Bad Request", "invalid_argument",
                              'Connect-Protocol-Version must be "1": got "%s"' % version)
    ctype = req["headers"].get("content-type", "")
    if ctype not in JSON_TYPES:
        return _response(415, "Unsupported Media Type", {"Accept-Post": ACCEPT_POST}, b"")
    if not req["body"]:
        return _connect_error(400, "Bad Request", "invalid_argument",
                              "unmarshal message: zero-length payload is not a valid JSON object")
    data = json.loads(req["body"].decode("utf-8")).get("data", "")
    body = json.dumps({"data": "Hello, %s!" % data},
                      separators=(",", ": " if spaced else ":")).encode()
    headers = {"Accept-Encoding": "gzip", "Content-Type": ctype}
    if "gzip" in req["headers"].get("accept-encoding", ""):
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return _response(200, "OK", headers, body)


# ---------------------------------------------------------------- the runner's own files


# The Forgejo runner's registration.go:18 warning, the first key of every .runner.
WARNING = ("This file is automatically generated by forgejo-runner. Do not edit it manually "
           "unless you know what you are doing. Removing this file will cause act runner to "
           "re-register as a new runner.")
UUID = "c9e50be9-a7c3-4aee-ba35-624c4ff8c519"

# A config as the runner's config.example.yaml has it (runner section, the keys read here).
CONFIG = """\
log:
  level: info
runner:
  # Where to store the registration result.
  file: %(file)s
  capacity: 1
  timeout: 3h
  insecure: %(insecure)s
  fetch_timeout: 5s
  fetch_interval: 2s
  labels: %(labels)s
"""


def registration(address, name="runner-1", labels=("docker:docker://node:20",), uuid=UUID):
    """The bytes of a .runner as the Forgejo runner writes it
    (registration.go:21-30, 118-122: json.Encoder with SetIndent("", "  "),
    keys WARNING, id, uuid, name, token, address, labels, a final newline)."""
    doc = {"WARNING": WARNING, "id": 7, "uuid": uuid, "name": name,
           "token": "6634bb58be0db23cc013a2e72dd1828ae0257cf", "address": address,
           "labels": list(labels)}
    return (json.dumps(doc, indent=2) + "\n").encode()


def runner_files(directory, address, insecure=False, file=".runner", labels="[]"):
    """A runner's /data as registration leaves it: config.yml and the
    .runner (at `file`, relative to it) -> directory."""
    with open("%s/config.yml" % directory, "w") as handle:
        handle.write(CONFIG % {"file": file, "insecure": "true" if insecure else "false",
                               "labels": labels})
    if address is not None:
        with open("%s/%s" % (directory, file), "wb") as handle:
            handle.write(registration(address))
    return directory

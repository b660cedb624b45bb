"""A throwaway CA and a loopback TLS server for the probe tests.

make_pki(dir) runs the real `openssl` CLI (Debian 12: OpenSSL 3.0) to make
a CA and leaf certificates; `openssl ca -startdate/-enddate` gives the
expired one (`openssl x509` cannot back-date before OpenSSL 3.4).
Server(...) listens on loopback only and answers in one of a few ways,
in a daemon thread, until closed.
"""

import os
import select
import socket
import ssl
import struct
import subprocess
import threading

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

CA_CONF = """\
[ca]
default_ca = test
[test]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = anything
unique_subject = no
x509_extensions = leaf
[anything]
commonName = supplied
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $ENV::SAN
"""

# name -> (DNS name it is for, notBefore, notAfter)
LEAVES = {
    "forge": ("forge.azrak.io", "20200101000000Z", "20991231000000Z"),
    "other": ("other.example", "20200101000000Z", "20991231000000Z"),
    "expired": ("forge.azrak.io", "20200101000000Z", "20200201000000Z"),
}


def _openssl(*args, env=None):
    done = subprocess.run(
        ["openssl", *args], capture_output=True, text=True, env=dict(os.environ, **(env or {}))
    )
    if done.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s" % (args[0], done.stderr))


def make_pki(directory):
    """-> {"ca": ca.pem, NAME: (cert.pem, key.pem) for NAME in LEAVES}."""
    path = lambda name: os.path.join(directory, name)  # noqa: E731
    _openssl(
        "req", "-x509", *EC, "-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "3",
        "-subj", "/CN=forgejo-runner-guard test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    with open(path("ca.cnf"), "w") as handle:
        handle.write(CA_CONF.format(dir=directory))
    open(path("index.txt"), "w").close()
    with open(path("serial"), "w") as handle:
        handle.write("1000\n")
    pki = {"ca": path("ca.pem")}
    for leaf, (dns, start, end) in LEAVES.items():
        _openssl(
            "req", *EC, "-keyout", path(leaf + ".key"), "-out", path(leaf + ".csr"),
            "-subj", "/CN=" + dns,
        )  # fmt: skip
        _openssl(
            "ca", "-batch", "-notext", "-config", path("ca.cnf"), "-cert", path("ca.pem"),
            "-keyfile", path("ca.key"), "-in", path(leaf + ".csr"), "-out", path(leaf + ".pem"),
            "-startdate", start, "-enddate", end,
            env={"SAN": "DNS:" + dns},
        )  # fmt: skip
        pki[leaf] = (path(leaf + ".pem"), path(leaf + ".key"))
    return pki


class Server:
    """A loopback server on an ephemeral port.

    mode: "tls"    TLS handshake with `cert` = (cert.pem, key.pem)
          "silent" accepts TCP (the kernel does) but never answers
          "close"  reads the ClientHello, then closes cleanly (EOF)
          "reset"  closes with a TCP reset
          "http"   answers like a plain HTTP server
    """

    def __init__(self, mode="tls", cert=None, host="127.0.0.1"):
        if host not in ("127.0.0.1", "::1"):
            raise ValueError("loopback only")
        self.mode, self.host = mode, host
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.context = None
        if mode == "tls":
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(*cert)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = None
        if mode != "silent":
            self._thread = threading.Thread(target=self._serve, daemon=True)
            self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            if not select.select([self.sock], [], [], 0.05)[0]:
                continue
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                try:
                    self._answer(conn)
                except (OSError, ssl.SSLError):
                    pass  # the client gave up on us: that is what is being tested

    def _answer(self, conn):
        if self.mode == "tls":
            with self.context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)  # until the client closes
        elif self.mode == "close":
            conn.recv(4096)
        elif self.mode == "reset":
            conn.recv(4096)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif self.mode == "http":
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def closed_port(host="127.0.0.1"):
    """A bound socket that does not listen: connecting to its port is
    refused.  Keep it open while the port is used."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.bind((host, 0))
    return sock

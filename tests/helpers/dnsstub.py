"""A tiny DNS server for the runbook sandbox: answers A queries for the
names it is given, NODATA for their other record types, NXDOMAIN for
everything else.  It stands in for the public DNS an off-LAN host asks,
so `getent hosts forge.azrak.io` in the sandbox shows the public address
(TEST-NET-3, 203.0.113.7) until the pin is in place, and no query ever
leaves the sandbox's private network namespace.

    python3 tests/helpers/dnsstub.py [--port 53] NAME=ADDRESS...

Prints "ready" on stdout once it listens on 127.0.0.1.
"""

import argparse
import socket
import struct
import sys


def parse_question(packet):
    """-> (id, flags, qname, qtype, end of question) or None."""
    if len(packet) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1:
        return None
    labels, pos = [], 12
    while True:
        if pos >= len(packet):
            return None
        length = packet[pos]
        pos += 1
        if length == 0:
            break
        if length & 0xC0 or pos + length > len(packet):
            return None
        labels.append(packet[pos : pos + length].decode("ascii", "replace"))
        pos += length
    if pos + 4 > len(packet):
        return None
    qtype, _qclass = struct.unpack("!HH", packet[pos : pos + 4])
    return ident, flags, ".".join(labels).lower(), qtype, pos + 4


def answer(packet, records):
    parsed = parse_question(packet)
    if parsed is None:
        return None
    ident, flags, name, qtype, end = parsed
    question = packet[12:end]
    rd = flags & 0x0100
    if name not in records:
        # response, recursion available, NXDOMAIN
        header = struct.pack("!HHHHHH", ident, 0x8000 | rd | 0x0080 | 3, 1, 0, 0, 0)
        return header + question
    if qtype != 1:  # not A: the name exists, no data of that type
        header = struct.pack("!HHHHHH", ident, 0x8000 | rd | 0x0080, 1, 0, 0, 0)
        return header + question
    address = socket.inet_aton(records[name])
    header = struct.pack("!HHHHHH", ident, 0x8000 | rd | 0x0080, 1, 1, 0, 0)
    rr = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + address
    return header + question + rr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("records", nargs="*", metavar="NAME=ADDRESS")
    args = parser.parse_args(argv)
    records = {}
    for item in args.records:
        name, _, address = item.partition("=")
        records[name.lower().rstrip(".")] = address
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", args.port))
    print("ready", flush=True)
    while True:
        packet, peer = sock.recvfrom(4096)
        reply = answer(packet, records)
        if reply is not None:
            sock.sendto(reply, peer)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)

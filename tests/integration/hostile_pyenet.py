"""A hostile peer written against python3-enet, a third-party ENet binding.

Connects a few peers to a tickwire server and sends a bounded number of
malformed packets: random bytes, unknown ids, truncated logins, inputs
before login and empty payloads, on every channel, reconnecting peers that
the server drops. Prints a JSON summary. Loopback only.

usage: hostile_pyenet.py IP PORT PACKETS [PROTOCOL_VERSION]
"""

import json
import random
import sys
import time

import enet

MSG_LOGIN = 0x01
MSG_INPUT = 0x60


def garbage(rng):
    kind = rng.choice(["random", "unknown_id", "truncated_login",
                       "early_input", "empty"])
    body = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200)))
    if kind == "unknown_id":
        body = b"\xee" + body
    elif kind == "truncated_login":
        body = bytes([MSG_LOGIN]) + body[:rng.randint(0, 60)]
    elif kind == "early_input":
        body = bytes([MSG_INPUT]) + body[:11]
    elif kind == "empty":
        body = b""
    return kind, body


def main():
    ip, port, packets = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    version = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    rng = random.Random(7)
    host = enet.Host(None, 32, 3, 0, 0)
    address = enet.Address(ip.encode(), port)
    # pyenet wraps the same ENet peer in a new object per event, so peers
    # are tracked by their ENet connect id.
    live = {}
    sent = {}
    total = connects = disconnects = pending = 0
    deadline = time.monotonic() + 60

    while total < packets and time.monotonic() < deadline:
        if len(live) + pending < 4:
            try:
                host.connect(address, 3, version)
                connects += 1
                pending += 1
            except OSError:
                pass  # every slot is still winding down; service first
        event = host.service(2)
        while event is not None and event.type != enet.EVENT_TYPE_NONE:
            key = event.peer.connectID
            if event.type == enet.EVENT_TYPE_CONNECT:
                live[key] = event.peer
                pending -= 1
            elif event.type == enet.EVENT_TYPE_DISCONNECT:
                disconnects += 1
                if live.pop(key, None) is None:
                    pending -= 1  # refused or timed out while connecting
            event = host.check_events()
        for peer in list(live.values()):
            if total >= packets:
                break
            kind, body = garbage(rng)
            channel = rng.randrange(3)
            flags = enet.PACKET_FLAG_RELIABLE if channel == 0 else 0
            peer.send(channel, enet.Packet(body, flags))
            sent[kind] = sent.get(kind, 0) + 1
            total += 1
        host.flush()

    for peer in live.values():
        peer.disconnect_now(0)
    host.flush()
    print(json.dumps({"packets": total, "connects": connects,
                      "disconnects": disconnects, **sent}))
    return 0 if total == packets else 1


if __name__ == "__main__":
    sys.exit(main())

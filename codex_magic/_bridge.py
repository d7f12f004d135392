"""stdio <-> a shared app-server's unix socket: ``python -m codex_magic._bridge SOCKET``.

The SDK launches this in place of ``codex app-server --listen stdio://`` and speaks its
usual JSON-RPC, one message a line; the socket speaks WebSocket, one message a text
frame (``codex app-server proxy`` copies bytes only). Exits when either side closes.
"""

from __future__ import annotations

import os
import socket
import sys
import threading

import websocket


def main(path: str) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        ws = websocket.WebSocket()
        ws.connect("ws://localhost/", socket=sock)
    except (OSError, websocket.WebSocketException) as exc:
        print(f"cannot connect to the shared codex app-server at {path}: {exc}", file=sys.stderr)
        return 1
    out = sys.stdout.buffer

    def frames_to_stdout() -> None:
        try:
            while True:
                frame = ws.recv()
                if not frame:  # a close frame
                    break
                data = frame.encode() if isinstance(frame, str) else frame
                out.write(data.replace(b"\n", b"") + b"\n")  # compact JSON: a newline is only layout
                out.flush()
        except (OSError, websocket.WebSocketException):
            pass
        os._exit(0)  # the server is gone: stdout closes, and the SDK sees the transport closed

    threading.Thread(target=frames_to_stdout, daemon=True).start()
    try:
        for line in sys.stdin.buffer:
            line = line.strip()
            if line:
                ws.send(line.decode())
        ws.close()
    except (OSError, websocket.WebSocketException):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

"""Client side of the lab daemon's control socket: one JSON request, one JSON reply."""
import json
import socket
from typing import Any


class ControlError(RuntimeError):
    """The daemon answered with an error, or could not be reached (see `unreachable`)."""

    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def request(socket_path: str, cmd: str, timeout: float = 90.0, **fields: Any) -> Any:
    payload = dict(fields)
    payload["cmd"] = cmd
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(socket_path)
        except OSError as exc:
            raise ControlError("lab daemon not reachable at %s (%s)" % (socket_path, exc), unreachable=True)
        sock.sendall((json.dumps(payload) + "\n").encode("utf-8"))
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    if not data:
        raise ControlError("lab daemon closed the control connection without answering %r" % cmd)
    reply = json.loads(data.decode("utf-8"))
    if not reply.get("ok"):
        raise ControlError("lab daemon refused %r: %s" % (cmd, reply.get("error")))
    return reply.get("result")

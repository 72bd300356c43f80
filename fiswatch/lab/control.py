"""Client side of the lab daemon's control socket: one JSON request, one JSON reply."""
import json
import socket
from typing import Any


class ControlError(RuntimeError):
    """The daemon answered with an error, or could not be reached (see `unreachable`)."""

    def __init__(self, message: str, unreachable: bool = False, errno: int = 0) -> None:
        super().__init__(message)
        self.unreachable = unreachable
        self.errno = errno  # why it was unreachable: EACCES = another user's lab, ENOENT/ECONNREFUSED = none


def request(socket_path: str, cmd: str, timeout: float = 90.0, **fields: Any) -> Any:
    payload = dict(fields)
    payload["cmd"] = cmd
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(socket_path)
        except OSError as exc:
            raise ControlError("lab daemon not reachable at %s (%s)" % (socket_path, exc), unreachable=True,
                               errno=exc.errno or 0)
        data = b""
        try:
            sock.sendall((json.dumps(payload) + "\n").encode("utf-8"))
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:  # reset by a dying daemon, or no answer within `timeout`
            raise ControlError("lab daemon at %s did not answer %r (%s)" % (socket_path, cmd, exc or "timed out"))
    finally:
        sock.close()
    if not data:
        raise ControlError("lab daemon closed the control connection without answering %r" % cmd)
    try:
        reply = json.loads(data.decode("utf-8"))
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        raise ControlError("what answers on %s is not the lab daemon (a reply that is not its JSON)" % socket_path)
    if not reply.get("ok"):
        raise ControlError("lab daemon refused %r: %s" % (cmd, reply.get("error")))
    return reply.get("result")

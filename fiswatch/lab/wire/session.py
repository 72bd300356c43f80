"""One proxied client session read from the wire, both ways: who the client is, each command and its answer.

The proxy hands the session every chunk it forwards (`from_client` returns the bytes to send on,
the same object unless a rewriter changed a packet; `from_server` only observes). The session
frames both directions (framing.py), follows the protocol's phases

  greeting -> handshake -> auth -> command   (or "not measured" with a reason)

and calls its behaviours at known points: on_handshake(HandshakeResponse), on_command(command,
Packet), on_answer(command, Packet, Answer or None), on_unmeasured(reason), on_close(). A behaviour
implements only what it needs. A session it cannot read (TLS, compression, the pre-4.1 protocol,
garbage, or a bug in a behaviour) stops being framed: its bytes keep flowing untouched, and the
behaviours hear on_unmeasured once with the reason. Nothing here raises into the proxy.

State per session is bounded: one packet head per direction (framing.KEEP bytes) and the command
in flight; sessions keep nothing per statement.
"""
from typing import Any, Dict, List, Optional, Sequence

from fiswatch.lab.wire import framing as F
from fiswatch.lab.wire import payload as P

GREETING, HANDSHAKE, AUTH, COMMAND, UNMEASURED, CLOSED = "greeting", "handshake", "auth", "command", \
    "not measured", "closed"


class Session:
    def __init__(self, behaviours: Sequence[Any] = (), rewriter: Any = None, keep: int = F.KEEP) -> None:
        self.behaviours: List[Any] = list(behaviours)
        self._hooks: Dict[str, List[Any]] = {}  # hook name -> the behaviours' bound methods (looked up once)
        self.rewriter = rewriter
        self.observes_only = rewriter is None  # the proxy may forward a client chunk before it reads it
        self.phase = GREETING
        self.reason = ""
        self.server_caps = 0
        self.client_caps = 0
        self._pending: Optional[int] = None  # command awaiting its answer
        self._answer_seq = 1
        self._client = F.Framer(self._client_packet, keep=keep,
                                hold=self._hold if rewriter is not None else None,
                                replace=rewriter.rewrite if rewriter is not None else None)
        self._server = F.Framer(self._server_packet, keep=keep)

    # --- called by the proxy ---------------------------------------------------------------
    def from_client(self, data: bytes) -> bytes:
        return self._client.feed(data)

    def client_packet(self, seq: int, payload: bytes) -> None:
        """One whole client packet its caller framed itself (the lab's RDS Proxy reads its clients packet
        by packet, rdsproxy_account.py): as `from_client` without framing again. Use one or the other."""
        framer = self._client
        if not framer.stopped and self._client_packet(F.Packet(seq, len(payload), payload[:framer.keep])):
            framer.stopped = True

    def take_delay(self) -> float:
        """Seconds the proxy holds the bytes `from_client` just returned (a rewriter's simulated disk
        congestion), then 0.0 again."""
        held = getattr(self.rewriter, "held", 0.0)
        if held:
            self.rewriter.held = 0.0
        return held

    def from_server(self, data: bytes) -> None:
        self._server.feed(data)

    def close(self) -> None:
        if self.phase != CLOSED:
            self.phase = CLOSED
            for behaviour in self.behaviours:
                hook = getattr(behaviour, "on_close", None)
                if hook is not None:
                    try:
                        hook()
                    except Exception:  # noqa: BLE001
                        pass

    # --- protocol ----------------------------------------------------------------------------
    def _hold(self, seq: int, length: int, first: int) -> bool:
        return self.phase == COMMAND and seq == 0 and bool(self.rewriter.wants(length, first))

    def _client_packet(self, packet: F.Packet) -> bool:
        try:
            if self.phase == HANDSHAKE:
                self._handshake(packet)
            elif self.phase == COMMAND:
                if packet.seq == 0:
                    self._command(packet)
                elif self._pending is not None:
                    self._answer_seq = packet.seq + 1  # a command continued past 16 MB
            elif self.phase == GREETING:
                self._unmeasured("the client spoke before the server's greeting")
        except F.Malformed as exc:
            self._unmeasured(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug here must never break the client's session
            self._unmeasured("internal error reading the client: %s: %s" % (type(exc).__name__, exc))
        return self.phase in (UNMEASURED, CLOSED)

    def _server_packet(self, packet: F.Packet) -> bool:
        try:
            if self.phase == GREETING:
                greeting = P.parse_greeting(packet.head)
                self.server_caps = greeting.capabilities
                self.phase = HANDSHAKE
            elif self.phase == AUTH:
                first = packet.head[:1]
                if first == b"\x00":
                    self.phase = COMMAND
                    self._call("on_authenticated")
                elif first == b"\xff":
                    answer = P.parse_answer(packet.head, self.client_caps)
                    self._call("on_answer", None, packet, answer)
            elif self.phase == COMMAND and self._pending is not None and packet.seq == self._answer_seq:
                command, self._pending = self._pending, None
                if command == F.COM_STMT_PREPARE and packet.head[:1] == b"\x00":
                    answer = None  # the behaviour reads the statement id from the packet
                else:
                    answer = P.parse_answer(packet.head, self.client_caps)
                self._call("on_answer", command, packet, answer)
        except F.Malformed as exc:
            self._unmeasured(str(exc))
        except Exception as exc:  # noqa: BLE001
            self._unmeasured("internal error reading the server: %s: %s" % (type(exc).__name__, exc))
        return self.phase in (UNMEASURED, CLOSED)

    def _handshake(self, packet: F.Packet) -> None:
        if packet.seq != 1:
            raise F.Malformed("client handshake with sequence id %d, not 1" % packet.seq)
        response = P.parse_handshake_response(packet.head)
        self.client_caps = response.capabilities
        if response.ssl_request or response.capabilities & F.CLIENT_SSL:
            self._unmeasured("TLS: the session is encrypted")
            return
        if response.capabilities & self.server_caps & F.CLIENT_COMPRESS:
            self._unmeasured("compressed protocol")
            return
        self.phase = AUTH
        self._call("on_handshake", response)

    def _command(self, packet: F.Packet) -> None:
        if not packet.head:
            raise F.Malformed("empty command packet")
        command = packet.head[0]
        self._pending = None if command in F.NO_ANSWER else command
        self._answer_seq = 1
        if command == F.COM_CHANGE_USER:
            self._pending = None
            self.phase = AUTH
        self._call("on_command", command, packet)

    def _unmeasured(self, reason: str) -> None:
        if self.phase in (UNMEASURED, CLOSED):
            return
        self.phase, self.reason = UNMEASURED, reason
        self._client.stopped = self._server.stopped = True
        for behaviour in self.behaviours:
            hook = getattr(behaviour, "on_unmeasured", None)
            if hook is not None:
                try:
                    hook(reason)
                except Exception:  # noqa: BLE001
                    pass

    def _call(self, name: str, *args: Any) -> None:
        hooks = self._hooks.get(name)
        if hooks is None:
            hooks = self._hooks[name] = [h for h in (getattr(b, name, None) for b in self.behaviours) if h is not None]
        for hook in hooks:
            hook(*args)

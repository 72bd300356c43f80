"""The lab RDS Proxy's side toward the instances: its own server sessions, and who the writer is.

`ServerSession.open` logs in to one instance (through the instance's own lab proxy, so a fenced
writer is fenced for the RDS Proxy too) as the client's user with the password the lab knows.
`WriterFollower` finds the writer by asking every Aurora instance `SELECT @@read_only` over such
sessions every POLL seconds, never via DNS (as AWS says RDS Proxy does: it follows the instances).
The writer is lost when it answers read-only or does not answer MISSES polls in a row (each within
ASK_TIMEOUT): the lab's assumption, AWS documents no interval; about one second here.
Runs on the lab's asyncio loop; nothing here blocks it.
"""
import asyncio
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, cast

from fiswatch.lab import rdsproxy_wire as W
from fiswatch.lab.wire import framing as F
from fiswatch.lab.wire import payload as P

POLL = 0.2  # seconds between two rounds of questions to the instances
ASK_TIMEOUT = 0.5  # seconds an instance has to answer (connect, login, query)
MISSES = 2  # rounds without an answer after which the writer is lost


class BackendError(Exception):
    """The server refused the login (its ERR packet is `packet`) or broke the protocol."""

    def __init__(self, message: str, packet: bytes = b"") -> None:
        super().__init__(message)
        self.packet = packet


class ForwardingProtocol(asyncio.StreamReaderProtocol, asyncio.BufferedProtocol):
    """A stream protocol whose data can go straight to a callback (an answer on its way to the client).
    Its socket is read into a buffer of the thread's (rdsproxy_wire.recv_buffer), not into a new bytes each time."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        super().__init__(reader)
        self.sink: Optional[Callable[[bytes], None]] = None
        self.lost: Optional[Callable[[Optional[BaseException]], None]] = None
        self.buffer = W.recv_buffer()  # the loop thread's (made on that thread, as the protocol is)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.buffer[:nbytes]))

    def data_received(self, data: bytes) -> None:
        if self.sink is not None:
            self.sink(data)
        else:
            super().data_received(data)

    def eof_received(self) -> bool:
        lost = self.lost
        if lost is not None:
            self.sink = self.lost = None
            lost(None)
        return bool(super().eof_received())

    def connection_lost(self, exc: Optional[Exception]) -> None:
        super().connection_lost(exc)
        lost = self.lost
        if lost is not None:
            self.sink = self.lost = None
            lost(exc)


class ServerSession:
    """One logged-in connection of the proxy to one instance."""

    def __init__(self, instance: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 hello: W.ServerHello) -> None:
        self.instance = instance
        self.reader = reader
        self.writer = writer
        self.hello = hello

    @classmethod
    async def open(cls, instance: str, address: Tuple[str, int], login: W.Login, password: str,
                   local_host: Optional[str] = None) -> "ServerSession":
        local = (local_host, 0) if local_host else None
        loop = asyncio.get_event_loop()
        reader = asyncio.StreamReader()
        protocol = ForwardingProtocol(reader)
        transport, _ = await loop.create_connection(lambda: protocol, address[0], address[1], local_addr=local)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        try:
            _seq, payload, _more = await W.read_packet(reader)
            hello = W.parse_hello(payload)
            auth = W.native_scramble(password, hello.salt)
            writer.write(W.login_packet(login._replace(auth=auth,
                                                       capabilities=login.capabilities & W.PROXY_CAPS)))
            while True:
                seq, payload, _more = await W.read_packet(reader)
                if payload[:1] == b"\x00":
                    return cls(instance, reader, writer, hello)
                if payload[:1] == b"\xff":
                    raise BackendError(P.parse_answer(payload).message, payload)
                salt = W.switch_salt(payload) if payload[:1] == b"\xfe" else None
                if salt is None:
                    raise BackendError("the server asked for an authentication the lab's RDS Proxy does not speak")
                writer.write(W.raw(seq + 1, W.native_scramble(password, salt)))
        except BaseException:
            writer.transport.abort()
            raise

    def send(self, payload: bytes) -> None:
        self.writer.transport.write(W.raw(0, payload))

    def forward(self, sink: Optional[Callable[[bytes], None]],
                lost: Optional[Callable[[Optional[BaseException]], None]]) -> None:
        """From now on hand what arrives to `sink` (rdsproxy_answer.Answer), `lost` when the server closes;
        None: back to the stream reader (`read`, `ask`)."""
        protocol = cast(ForwardingProtocol, self.writer.transport.get_protocol())
        protocol.sink, protocol.lost = sink, lost

    def pause_reading(self) -> None:
        cast(asyncio.Transport, self.writer.transport).pause_reading()

    def resume_reading(self) -> None:
        transport = cast(asyncio.Transport, self.writer.transport)
        if not transport.is_closing():
            transport.resume_reading()

    async def read(self) -> Tuple[int, bytes, bool]:
        return await W.read_packet(self.reader, allow_continued=True)

    async def ask(self, query: str) -> Optional[bytes]:
        """The first column of the first row of a text query (None for NULL or no row)."""
        self.send(bytes((F.COM_QUERY,)) + query.encode("utf-8"))
        end = W.AnswerEnd(F.COM_QUERY)
        value: Optional[bytes] = None
        rows = 0
        while True:
            _seq, payload, _more = await self.read()
            if payload[:1] == b"\xff":
                raise BackendError(P.parse_answer(payload).message, payload)
            state = end.state
            done = end.feed(payload)
            if state == W.ROWS and not done and rows == 0:
                rows += 1
                length = payload[0]
                value = None if length == 0xFB else payload[1:1 + length]
            if done:
                return value

    async def ask_ok(self, statement: str) -> Optional[str]:
        """Run a statement that answers OK (a replayed SET); None, or the server's error message."""
        try:
            await self.ask(statement)
        except BackendError as exc:
            return str(exc)
        return None

    def close(self) -> None:
        """Close at once (a fenced instance would never answer a polite goodbye)."""
        self.writer.transport.abort()


class Instance(NamedTuple):
    name: str
    address: Tuple[str, int]


class WriterFollower:
    """Knows the writer, from the instances' own answers; tells the proxy when it goes or comes.

    Each instance is asked in its own loop, so an instance that hangs (fenced) slows no other."""

    def __init__(self, instances: Sequence[Instance], login: W.Login, password: str,
                 on_change: Callable[[Optional[str], Optional[str]], None], local_host: Optional[str] = None,
                 poll: float = POLL, ask_timeout: float = ASK_TIMEOUT, misses: int = MISSES) -> None:
        self.instances = list(instances)
        self.login = login
        self.password = password
        self.on_change = on_change  # (old writer or None, new writer or None)
        self.local_host = local_host
        self.poll, self.ask_timeout, self.misses = poll, ask_timeout, misses
        self.writer: Optional[Instance] = None
        self.generation = 0  # grows each time the writer goes or comes
        self.version = "5.5.5-10.11.0-MariaDB-lab-rds-proxy"
        self.ready = asyncio.Event()
        self.lost_at: Optional[float] = None
        self._answers: Dict[str, Optional[bool]] = {}  # last answer per instance: writable, read-only, None
        self._missed: Dict[str, int] = {}
        self._sessions: Dict[str, ServerSession] = {}
        self._tasks: List["asyncio.Future"] = []
        self.held = False  # a patch restarts the writer: no decisions, borrowers wait (hold/release)

    def start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._follow(i)) for i in self.instances]

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()

    async def _follow(self, instance: Instance) -> None:
        while True:
            try:
                answer = await self._ask(instance)
                self._missed[instance.name] = 0 if answer is not None else self._missed.get(instance.name, 0) + 1
                self._answers[instance.name] = answer
                self._decide()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - never let the follower die: the next round asks again
                pass
            await asyncio.sleep(self.poll)

    async def _ask(self, instance: Instance) -> Optional[bool]:
        """True: writable, False: read-only, None: no answer in time."""
        try:
            return await asyncio.wait_for(self._read_only(instance), self.ask_timeout) is False
        except (asyncio.TimeoutError, OSError, EOFError, BackendError, W.ProtocolError, F.Malformed,
                asyncio.IncompleteReadError):
            session = self._sessions.pop(instance.name, None)
            if session is not None:
                session.close()
            return None

    async def _read_only(self, instance: Instance) -> bool:
        session = self._sessions.get(instance.name)
        if session is None:
            session = await ServerSession.open(instance.name, instance.address, self.login, self.password,
                                               self.local_host)
            self._sessions[instance.name] = session
            self.version = session.hello.version
        return await session.ask("SELECT @@read_only") != b"0"

    def hold(self) -> None:
        """The writer's engine restarts on purpose (zero-downtime patching): keep it, let borrowers wait."""
        self.held = True
        self.generation += 1
        self.ready.clear()

    def release(self) -> None:
        """The restart is over: the same writer serves again, on new server sessions."""
        self.held = False
        self.generation += 1
        self._missed.clear()
        if self.writer is not None:
            self.ready.set()

    def _decide(self) -> None:
        if self.held:
            return
        current = self.writer
        if current is not None:
            if self._answers.get(current.name) is False or self._missed.get(current.name, 0) >= self.misses:
                self._set(None)
                current = None
        if current is None:
            found = [i for i in self.instances if self._answers.get(i.name)]
            if len(found) == 1:
                self._set(found[0])

    def _set(self, writer: Optional[Instance]) -> None:
        old = self.writer
        self.writer = writer
        self.generation += 1
        if writer is None:
            self.ready.clear()
            self.lost_at = time.time()
        else:
            self.ready.set()
        self.on_change(old.name if old else None, writer.name if writer else None)

"""One client session of the lab's RDS Proxy: owned by the proxy, kept across a failover.

The client logs in to the proxy (the proxy's greeting, its connection id, its scramble); the proxy
then logs in to the writer as that user and forwards each command; the answer goes back by callbacks as
it arrives (rdsproxy_answer.py; byte-for-byte as the server sent it). Commands come by callbacks too, from
the client's link (rdsproxy_client.py), and are handled there and then; a task runs only where the session
must wait: the login, and a server session to borrow (rdsproxy_borrow.py). When the writer goes (rdsproxy_backend.py):
  - a statement in flight fails with ERR 1105 and the session closes (what AWS's Aurora labs
    observed: error 1105, the exact text is unverified);
  - a session inside an open transaction, or pinned, gets 1105 on its next statement, then closes;
  - any other session stays open; its next statement waits for a writer (at most the borrow timeout,
    then ERR 9501) and runs on a new server session with the session's schema and tracked
    variables (autocommit, character set, sql_mode, time zone, isolation) replayed.
Pinning (the lab's assumption, after AWS's list of what pins a session): SET of a variable the proxy
does not track, user variables, temporary tables, prepared statements, LOCK TABLES and GET_LOCK.
"""
import asyncio
import collections
from typing import Any, Coroutine, Deque, Dict, List, Optional, Tuple, cast

from fiswatch.lab import rdsproxy_wire as W
from fiswatch.lab.rdsproxy_account import client_account
from fiswatch.lab.rdsproxy_answer import Answer
from fiswatch.lab.rdsproxy_backend import ServerSession
from fiswatch.lab.rdsproxy_borrow import LOST_TEXT, LOST_WRITER, borrow
from fiswatch.lab.rdsproxy_effect import statement_effect
from fiswatch.lab.wire import framing as F

PATCH_TEXT = ("zero-downtime patching restarted the writer: %s (error 1105: the lab's choice, AWS documents "
              "no error for it)")
UNMOVABLE = ("temporary table", "LOCK TABLES", "user lock (GET_LOCK)")  # ZDP drops these sessions (AWS)
TOO_BIG = "too big"  # in a session's inbox: the client sent a packet of 16 MB or more there


class ClientSession:
    """A client's connection to the proxy; `proxy` is the RdsProxy that owns it, `link` its socket
    (rdsproxy_client.ClientLink). Commands come by callbacks (`packet`) and are handled on the spot
    when the session can (logged in, a server session at hand or idle in the pool); a task runs only
    where the session must wait: the login, a writer to connect to, replaying variables."""

    def __init__(self, proxy: Any, link: Any, conn_id: int) -> None:
        self.proxy = proxy
        self.link = link  # also what rdsproxy_answer.py waits on (drain, its transport's buffer)
        self.account = client_account(proxy.account, link)  # the wire accounting (rdsproxy_account.py)
        self.conn_id = conn_id
        self.login: Optional[W.Login] = None
        self.server: Optional[ServerSession] = None
        self.server_generation = -1
        self.schema = ""
        self.tracked: Dict[str, str] = {}
        self.key: Optional[tuple] = None  # _key() until the schema or a tracked variable changes
        self.pinned: List[str] = []
        self.set_replay: List[str] = []  # pinning SET statements, replayed after a patch (ZDP keeps variables)
        self.doomed_text = LOST_TEXT  # what the 1105 of a doomed session says (%s: why)
        self.in_trans = False
        self.doomed = ""  # why the next statement fails with 1105
        self.in_flight = False  # a command sent, its answer not complete
        self.lost = False  # the writer went while a statement was in flight
        self.seq_out = 1  # the sequence id of the next packet the client gets
        self.answer = Answer(self)  # the answer on its way (forwarded by callbacks, rdsproxy_answer.py)
        self.inbox: Deque[Any] = collections.deque()  # packets (seq, payload) not handled yet, or TOO_BIG
        self.waiter: Optional["asyncio.Future[None]"] = None  # the task waits for a packet
        self.task: Optional["asyncio.Task[None]"] = None  # the login or a wait for a writer, while it runs
        self.eof = False  # the client sent its last byte
        self.closed = False

    # --- life -------------------------------------------------------------------------------------
    def start(self) -> None:
        """The greeting, then the login in a task (it waits for the client's packets and for a writer)."""
        self._wait_in_task(self._login())

    async def _login(self) -> None:
        if await self._handshake():
            return
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        task, self.task = self.task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._drop_server()
        self.account.close()
        self.link.close()
        self.proxy.forget(self)

    def writer_changed(self, generation: int) -> None:
        """Called by the proxy when the writer went: decide this session's fate now."""
        if self.server is None or self.server_generation >= generation:
            return
        if self.in_flight:
            self.lost = True
            self._drop_server()  # the answer's callback sees it at once: answer_lost answers 1105
            return
        if self.in_trans:
            self.doomed = "the transaction open on the old writer was lost"
        elif self.pinned:
            self.doomed = "the session was pinned (%s) to the old writer" % self.pinned[0]
        self._drop_server()

    def patched(self, zdp: bool) -> str:
        """Zero-downtime patching restarts the writer's engine: this session's fate (docs/rdsproxy.md)."""
        if self.login is None:
            return "logging in"
        movable = all(p.startswith("SET of") for p in self.pinned)
        if not zdp or not movable and any(p in UNMOVABLE for p in self.pinned):
            self.close()  # ZDP drops sessions holding temp tables or locks; without ZDP a plain restart drops all
            return "dropped"
        if self.in_flight:
            self.lost = True
            self._drop_server()
            return "failed in flight"
        if self.in_trans:
            self.doomed, self.doomed_text = "the open transaction was rolled back", PATCH_TEXT
            self._drop_server()
            return "rolled back"
        if not movable:
            self.close()  # a prepared statement or a user variable set in a query cannot be moved (the lab's choice)
            return "dropped"
        self._drop_server()
        return "kept"

    # --- what the client sends (ClientLink's callbacks) -------------------------------------------
    def packet(self, seq: int, payload: bytes) -> None:
        """A complete packet from the client (every one passes here): a command is handled at once unless
        the session is busy (logging in, waiting for a writer, the last answer not in yet)."""
        if self.closed:
            return
        if self._busy():
            self._queue((seq, payload))
            return
        self._command(seq, payload)

    def too_big(self) -> None:
        """The client sent a packet of 16 MB or more (the link drops the rest): 1153, in its turn."""
        if self._busy():
            self._queue(TOO_BIG)
            return
        self._refuse_too_big()

    def _busy(self) -> bool:
        """Logging in, waiting for a writer, the last answer not in yet, or packets before this one waiting."""
        return self.task is not None or self.in_flight or bool(self.inbox)

    def client_eof(self) -> None:
        """The client sent its last byte or went: commands already read are still handled."""
        if self.closed:
            return
        self.eof = True
        if self.waiter is not None:
            self._wake()
        elif self.task is None and not self.inbox:
            self.close()

    def _queue(self, item: Any) -> None:
        self.inbox.append(item)
        if self.waiter is not None:
            self._wake()
        elif len(self.inbox) == 1:
            self.link.pause_reading()  # held by TCP until the session takes it

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _next_packet(self) -> Tuple[int, bytes]:
        """The task's read: the next packet from the client (IncompleteReadError: the client went)."""
        while not self.inbox:
            if self.eof:
                raise asyncio.IncompleteReadError(b"", 4)
            self.link.resume_reading()
            self.waiter = asyncio.get_event_loop().create_future()
            await self.waiter
        item = self.inbox.popleft()
        if item is TOO_BIG:
            raise W.TooBig("a packet of %d bytes or more" % F.MAX_PAYLOAD)
        return cast(Tuple[int, bytes], item)

    def _take_queued(self) -> None:
        """Handle the packets that came while the session was busy, in order, as far as it is free."""
        while self.inbox and self.task is None and not self.in_flight and not self.closed:
            item = self.inbox.popleft()
            if item is TOO_BIG:
                self._refuse_too_big()
                return
            self._command(*item)
        if self.closed or self.inbox:
            return
        if self.eof and self.task is None:
            self.close()
        else:
            self.link.resume_reading()

    def _wait_in_task(self, work: Coroutine[Any, Any, None]) -> None:
        self.task = asyncio.get_event_loop().create_task(self._task(work))

    async def _task(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except W.TooBig:
            self._refuse_too_big()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self.close()
        except (W.ProtocolError, F.Malformed) as exc:
            self.proxy.count("bad_input")
            self._send(W.err_packet(self.seq_out, 1043, "Bad handshake: %s" % exc, "08S01"))
            self.close()
        except Exception as exc:  # noqa: BLE001 - a bug: one line in the lab log, the session ends, the proxy serves on
            self._internal_error(exc)
        finally:
            if self.task is asyncio.current_task():
                self.task = None
        if not self.closed and self.task is None:
            self._take_queued()

    def _internal_error(self, exc: BaseException) -> None:
        self.proxy.log("rds proxy: session %d ended by an internal error: %s: %s"
                       % (self.conn_id, type(exc).__name__, exc))
        self.close()

    def _refuse_too_big(self) -> None:
        self.proxy.count("too_big")
        self._send(W.err_packet(self.seq_out, 1153, "Got a packet bigger than 'max_allowed_packet' bytes "
                                "(the lab's RDS Proxy takes commands under 16 MB)", "08S01"))
        self.inbox.clear()
        self.link.linger(5.0, 128 << 20, self.close)

    # --- login ------------------------------------------------------------------------------------
    async def _handshake(self) -> bool:
        salt = W.new_salt()
        self.to_client(W.greeting(self.conn_id, salt, self.proxy.version))
        seq, payload = await self._next_packet()
        self.account.from_client(seq, payload)
        self.seq_out = seq + 1
        login = W.parse_login(payload)
        auth = login.auth
        if login.plugin and login.plugin != W.NATIVE:
            self._send(W.raw(self.seq_out, b"\xfe" + W.NATIVE + b"\x00" + salt + b"\x00"))
            seq, auth = await self._next_packet()
            self.seq_out = seq + 1
        password = self.proxy.password_of(login.user)
        if password is None or auth != W.native_scramble(password, salt):
            self.proxy.count("denied")
            host = (self.link.get_extra_info("peername") or ("?",))[0]
            self._send(W.err_packet(self.seq_out, 1045, "Access denied for user '%s'@'%s' (using password: %s)"
                                    % (login.user[:64], host, "YES" if auth else "NO"), "28000"))
            return False
        self.login = login._replace(auth=b"")
        self.schema = login.database
        error = await self._connect()
        if error is not None:
            self._send(W.raw(self.seq_out, error))
            return False
        self._release()  # the login worked: an idle client session holds no server session
        self._send(W.ok_packet(self.seq_out))
        return True

    async def _connect(self) -> Optional[bytes]:
        """A server session on the writer (rdsproxy_borrow.py: waits within the borrow timeout); None or an ERR payload."""
        assert self.login is not None
        self.server, self.server_generation, error = await borrow(
            self.proxy, self.login._replace(database=self.schema), self._key(),
            list(self.tracked.values()) + self.set_replay)
        return error

    # --- commands ---------------------------------------------------------------------------------
    def _command(self, seq: int, payload: bytes) -> None:
        """One command, handled on the spot (the answer before it is complete); a task only when no server
        session is at hand or idle."""
        try:
            self.account.from_client(seq, payload)
            self.seq_out = 1
            if seq != 0:
                self._send(W.err_packet(1, 1156, "Got packets out of order", "08S01"))
                self.close()
                return
            command = payload[0] if payload else -1
            if command == F.COM_QUIT:
                self.close()
                return
            if self.doomed:
                self.proxy.count("failed_sessions")
                self._send(W.err_packet(1, LOST_WRITER, self.doomed_text % self.doomed))
                self.close()
                return
            if command not in F.COMMAND_NAMES and command not in (W.COM_FIELD_LIST, W.COM_STATISTICS):
                self.proxy.count("bad_input")
                self._send(W.err_packet(1, 1047, "Unknown command", "08S01"))
                return
            if command == F.COM_CHANGE_USER:
                self._send(W.err_packet(1, 1235, "COM_CHANGE_USER is not supported by the lab's RDS Proxy", "42000"))
                return
            self._before(command, payload)
            if self.server is None or self.server_generation != self.proxy.generation:
                self._drop_server()
                self.server, self.server_generation = self.proxy.borrow_idle(self._key())  # no wait, no replay
                if self.server is None:
                    self._wait_in_task(self._connect_and_forward(command, payload))
                    return
            self._forward(command, payload)
        except Exception as exc:  # noqa: BLE001 - a bug: one line in the lab log, the session ends, the proxy serves on
            self._internal_error(exc)

    async def _connect_and_forward(self, command: int, payload: bytes) -> None:
        error = await self._connect()
        if error is not None:
            self._send(W.raw(1, error))
            self.close()
            return
        self._forward(command, payload)

    def _before(self, command: int, payload: bytes) -> None:
        if command == F.COM_STMT_PREPARE:
            self._pin("prepared statement")
        elif command == F.COM_RESET_CONNECTION:
            self.pinned, self.tracked, self.key = [], {}, None
        elif command == F.COM_INIT_DB:
            self.schema, self.key = payload[1:].decode("utf-8", "replace"), None
        elif command == F.COM_QUERY and W.may_change_session(payload):
            effect = statement_effect(payload[1:4097].decode("utf-8", "replace"))
            if effect is None:
                return
            if effect[0] == "track":
                self.tracked[effect[1]], self.key = effect[2], None
            elif effect[0] == "pin":
                self._pin(effect[1])
                if effect[1].startswith("SET of") and len(self.set_replay) < 32:
                    self.set_replay.append(payload[1:4097].decode("utf-8", "replace"))
            elif effect[0] == "use":
                self.schema, self.key = effect[1], None

    def _pin(self, reason: str) -> None:
        if not self.pinned:
            self.proxy.count("pinned")
        if reason not in self.pinned and len(self.pinned) < 8:
            self.pinned.append(reason)

    def _forward(self, command: int, payload: bytes) -> None:
        """Send one command to the server session; its answer goes to the client by callbacks
        (rdsproxy_answer.py), then `answered` or `answer_lost`."""
        server = self.server
        assert server is not None
        if command in F.NO_ANSWER:
            server.send(payload)
            self.answered(-1, False)
            return
        self.in_flight = True
        self.answer.start(server, command)
        server.send(payload)

    def to_client(self, data: bytes) -> None:
        """Every byte the client gets passes here: the answers as the server sent them, the proxy's own packets."""
        if not self.closed and not self.link.is_closing():
            self.link.write(data)
            self.account.to_client(data)

    def answered(self, status: int, init_db_failed: bool) -> None:
        """The answer is complete: its status says whether a transaction is open; the server session goes
        back to the pool unless the session needs it (a transaction, pinned)."""
        self.in_flight = False
        if status >= 0:
            self.in_trans = bool(status & F.SERVER_STATUS_IN_TRANS)
        if init_db_failed:
            self.schema, self.key = self.login.database if self.login else "", None
        if not self.in_trans and not self.pinned:
            self._release()
        if self.inbox and self.task is None:
            asyncio.get_event_loop().call_soon(self._take_queued)  # a client that sent before the answer was in

    def answer_lost(self) -> None:
        """The server session went before the answer was complete: 1105, the session ends."""
        self.in_flight = False
        if self.closed:
            return
        # the writer went (writer_changed aborted the server session) or the server closed it
        self.proxy.count("failed_in_flight")
        self._send(W.err_packet(self.seq_out, LOST_WRITER, LOST_TEXT % (
            "the statement in flight was lost" if self.lost else "the server closed the session")))
        self.close()

    # --- helpers ----------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        """One packet of the proxy's own; the next one the client gets follows its sequence id."""
        self.to_client(data)
        if len(data) >= 4:
            self.seq_out = (data[3] + 1) & 0xFF

    def _key(self) -> tuple:
        """What a pooled server session must share with this client session to serve it unchanged."""
        key = self.key
        if key is None:
            login = self.login
            assert login is not None
            key = self.key = (login.user, self.schema, login.charset, login.capabilities & W.PROXY_CAPS,
                              tuple(sorted(self.tracked.items())))
        return key

    def _release(self) -> None:
        """Give the server session back to the proxy's pool (transaction-level multiplexing)."""
        server, self.server = self.server, None
        if server is not None:
            self.proxy.pool.give(self._key(), self.server_generation, server)

    def _drop_server(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()

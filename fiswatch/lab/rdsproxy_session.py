"""One client session of the lab's RDS Proxy: owned by the proxy, kept across a failover.

The client logs in to the proxy (the proxy's greeting, its connection id, its scramble); the proxy
then logs in to the writer as that user and forwards each command; the answer goes back by callbacks as
it arrives (rdsproxy_answer.py; byte-for-byte as the server sent it). When the writer goes (rdsproxy_backend.py):
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
import re
from typing import Any, Dict, List, Optional

from fiswatch.lab import rdsproxy_wire as W
from fiswatch.lab.rdsproxy_account import tap
from fiswatch.lab.rdsproxy_answer import Answer
from fiswatch.lab.rdsproxy_backend import BackendError, ServerSession
from fiswatch.lab.wire import framing as F

LOST_WRITER = 1105  # as AWS's Aurora labs observed it
LOST_TEXT = ("the lab's RDS Proxy lost the writer (failover): %s; reconnect or retry "
             "(error 1105 as AWS's Aurora labs observed, text the lab's)")
PATCH_TEXT = ("zero-downtime patching restarted the writer: %s (error 1105: the lab's choice, AWS documents "
              "no error for it)")
UNMOVABLE = ("temporary table", "LOCK TABLES", "user lock (GET_LOCK)")  # ZDP drops these sessions (AWS)
BORROW_TIMEOUT_ERROR = 9501  # the lab's assumption (RDS Proxy's borrow timeout error, unverified)

TRACKED = frozenset(("autocommit", "sql_mode", "time_zone", "character_set_client", "character_set_connection",
                     "character_set_results", "collation_connection", "transaction_isolation", "tx_isolation",
                     "session_track_schema", "sql_select_limit", "net_read_timeout", "net_write_timeout",
                     "wait_timeout", "interactive_timeout", "names", "character set"))
_COMMENTS = re.compile(r"^(\s|/\*.*?\*/|--[^\n]*\n|#[^\n]*\n)*", re.S)
_ASSIGN = re.compile(r"(@@session\.|@@local\.|@@|\bsession\s+|\blocal\s+)?(@?[A-Za-z_][A-Za-z0-9_$]*)\s*:?=")
_PINS = (
    (re.compile(r"^create\s+temporary\s+table", re.I), "temporary table"),
    (re.compile(r"^lock\s+tables?\b", re.I), "LOCK TABLES"),
    (re.compile(r"^prepare\b", re.I), "prepared statement (PREPARE)"),
    (re.compile(r"\bget_lock\s*\(", re.I), "user lock (GET_LOCK)"),
    (re.compile(r"@[A-Za-z_][A-Za-z0-9_$]*\s*:=", re.I), "user variable"),
)


def statement_effect(sql: str) -> Any:
    """What a query does to the session: ("track", key, sql), ("pin", reason), ("use", schema) or None.

    >>> statement_effect("SET AUTOCOMMIT = 0")[:2]
    ('track', 'autocommit')
    >>> statement_effect("/* x */ set names utf8mb4")[:2]
    ('track', 'names')
    >>> statement_effect("SET @a = 1")
    ('pin', 'SET of @a')
    >>> statement_effect("SET SESSION max_heap_table_size = 1 << 20")
    ('pin', 'SET of max_heap_table_size')
    >>> statement_effect("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE") is None
    True
    >>> statement_effect("create temporary table t (i int)")
    ('pin', 'temporary table')
    >>> statement_effect("USE `testdb`")
    ('use', 'testdb')
    """
    text = _COMMENTS.sub("", sql, count=1)
    head = text[:40].lower()
    if head.startswith("use ") or head.startswith("use\t"):
        return ("use", text[4:].strip().strip(";").strip().strip("`"))
    if re.match(r"set\s", head):
        rest = text[4:].strip()
        low = rest.lower()
        if low.startswith("transaction") or low.startswith("session transaction"):
            return None  # the next transaction only
        for key in ("names", "character set", "charset"):
            if low.startswith(key + " ") or low.startswith(key + "\t"):
                return ("track", "names" if key != "character set" else key, text)
        names = [(m.group(2) or "").lower() for m in _ASSIGN.finditer(rest)]
        untracked = [n for n in names if n not in TRACKED]
        if names and not untracked:
            return ("track", ",".join(sorted(set(names))), text)
        return ("pin", "SET of %s" % (untracked[0] if untracked else rest[:30]))
    for pattern, reason in _PINS:
        if pattern.search(text[:4096]):
            return ("pin", reason)
    return None


class ClientSession:
    """A client's connection to the proxy; `proxy` is the RdsProxy that owns it."""

    def __init__(self, proxy: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn_id: int) -> None:
        self.proxy = proxy
        self.reader = reader
        self.writer, self.account = tap(proxy.account, writer)  # the wire accounting (rdsproxy_account.py)
        self.conn_id = conn_id
        self.login: Optional[W.Login] = None
        self.server: Optional[ServerSession] = None
        self.server_generation = -1
        self.schema = ""
        self.tracked: Dict[str, str] = {}
        self.pinned: List[str] = []
        self.set_replay: List[str] = []  # pinning SET statements, replayed after a patch (ZDP keeps variables)
        self.doomed_text = LOST_TEXT  # what the 1105 of a doomed session says (%s: why)
        self.in_trans = False
        self.doomed = ""  # why the next statement fails with 1105
        self.in_flight = False  # a command sent, its answer not complete
        self.lost = False  # the writer went while a statement was in flight
        self.seq_out = 1  # the sequence id of the next packet the client gets
        self.pending: List[bytes] = []  # answer packets not yet written to the client
        self.pending_size = 0
        self.answer: Optional[Answer] = None  # the last command's answer (forwarded by callbacks)
        self.closed = False

    # --- life -------------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            if await self._handshake():
                await self._commands()
        except W.TooBig:
            self.proxy.count("too_big")
            self._send(W.err_packet(self.seq_out, 1153, "Got a packet bigger than 'max_allowed_packet' bytes "
                                    "(the lab's RDS Proxy takes commands under 16 MB)", "08S01"))
            await self._discard()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except (W.ProtocolError, F.Malformed) as exc:
            self.proxy.count("bad_input")
            self._send(W.err_packet(self.seq_out, 1043, "Bad handshake: %s" % exc, "08S01"))
        except Exception as exc:  # noqa: BLE001 - a bug: one line in the lab log, the session ends, the proxy serves on
            self.proxy.log("rds proxy: session %d ended by an internal error: %s: %s"
                           % (self.conn_id, type(exc).__name__, exc))
        finally:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._drop_server()
        self.writer.close()
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

    # --- login ------------------------------------------------------------------------------------
    async def _handshake(self) -> bool:
        salt = W.new_salt()
        self.writer.write(W.greeting(self.conn_id, salt, self.proxy.version))
        seq, payload, _more = await W.read_packet(self.reader)
        self.account.from_client(seq, payload)
        self.seq_out = seq + 1
        login = W.parse_login(payload)
        auth = login.auth
        if login.plugin and login.plugin != W.NATIVE:
            self._send(W.raw(self.seq_out, b"\xfe" + W.NATIVE + b"\x00" + salt + b"\x00"))
            seq, auth, _more = await W.read_packet(self.reader)
            self.seq_out = seq + 1
        password = self.proxy.password_of(login.user)
        if password is None or auth != W.native_scramble(password, salt):
            self.proxy.count("denied")
            host = (self.writer.get_extra_info("peername") or ("?",))[0]
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
        """A server session on the writer (waiting for one within the borrow timeout); None or an ERR payload."""
        assert self.login is not None
        deadline = asyncio.get_event_loop().time() + self.proxy.borrow_timeout
        while True:
            left = deadline - asyncio.get_event_loop().time()
            writer = await self.proxy.wait_writer(left)
            if writer is None:
                self.proxy.count("borrow_timeouts")
                return W.err_packet(0, BORROW_TIMEOUT_ERROR, "Timed-out waiting to acquire database connection "
                                    "(the lab's RDS Proxy found no writer within %gs)"
                                    % self.proxy.borrow_timeout)[4:]
            generation = self.proxy.generation
            pooled = self.proxy.pool.take(self._key(), generation)
            if pooled is not None:
                self.server, self.server_generation = pooled, generation
                return None
            try:
                login = self.login._replace(database=self.schema)
                server = await asyncio.wait_for(ServerSession.open(writer.name, writer.address, login,
                                                                   self.proxy.password_of(login.user) or "",
                                                                   self.proxy.local_host), self.proxy.connect_timeout)
            except BackendError as exc:
                return exc.packet[:F.MAX_PAYLOAD - 1] or W.err_packet(0, LOST_WRITER, str(exc))[4:]
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, W.ProtocolError):
                if asyncio.get_event_loop().time() >= deadline:
                    return W.err_packet(0, BORROW_TIMEOUT_ERROR, "Timed-out waiting to acquire database "
                                        "connection")[4:]
                await asyncio.sleep(0.1)
                continue
            if generation != self.proxy.generation:
                server.close()
                continue
            self.server, self.server_generation = server, generation
            try:
                for statement in list(self.tracked.values()) + self.set_replay:
                    if await server.ask_ok(statement) is not None:
                        self._drop_server()
                        return W.err_packet(0, LOST_WRITER, LOST_TEXT % "a session variable could not be replayed")[4:]
            except (OSError, asyncio.IncompleteReadError, W.ProtocolError):
                self._drop_server()  # the new server session died at once (the writer going again): try again
                await asyncio.sleep(0.1)
                continue
            return None

    # --- commands ---------------------------------------------------------------------------------
    async def _commands(self) -> None:
        while True:
            seq, payload, _more = await W.read_packet(self.reader)
            answer, self.answer = self.answer, None
            if answer is not None and not await answer.done:  # a client that sent before the answer was in
                return
            self.account.from_client(seq, payload)
            if self.closed:
                return
            self.seq_out = 1
            if seq != 0:
                self._send(W.err_packet(1, 1156, "Got packets out of order", "08S01"))
                return
            command = payload[0] if payload else -1
            if command == F.COM_QUIT:
                return
            if self.doomed:
                self.proxy.count("failed_sessions")
                self._send(W.err_packet(1, LOST_WRITER, self.doomed_text % self.doomed))
                return
            if command not in F.COMMAND_NAMES and command not in (W.COM_FIELD_LIST, W.COM_STATISTICS):
                self.proxy.count("bad_input")
                self._send(W.err_packet(1, 1047, "Unknown command", "08S01"))
                continue
            if command == F.COM_CHANGE_USER:
                self._send(W.err_packet(1, 1235, "COM_CHANGE_USER is not supported by the lab's RDS Proxy", "42000"))
                continue
            self._before(command, payload)
            if self.server is None or self.server_generation != self.proxy.generation:
                self._drop_server()
                self.server, self.server_generation = self.proxy.borrow_idle(self._key())  # no wait, no replay
                error = await self._connect() if self.server is None else None
                if error is not None:
                    self._send(W.raw(1, error))
                    return
            self._forward(command, payload)

    def _before(self, command: int, payload: bytes) -> None:
        if command == F.COM_STMT_PREPARE:
            self._pin("prepared statement")
        elif command == F.COM_RESET_CONNECTION:
            self.pinned, self.tracked = [], {}
        elif command == F.COM_INIT_DB:
            self.schema = payload[1:].decode("utf-8", "replace")
        elif command == F.COM_QUERY and W.may_change_session(payload):
            effect = statement_effect(payload[1:4097].decode("utf-8", "replace"))
            if effect is None:
                return
            if effect[0] == "track":
                self.tracked[effect[1]] = effect[2]
            elif effect[0] == "pin":
                self._pin(effect[1])
                if effect[1].startswith("SET of") and len(self.set_replay) < 32:
                    self.set_replay.append(payload[1:4097].decode("utf-8", "replace"))
            elif effect[0] == "use":
                self.schema = effect[1]

    def _pin(self, reason: str) -> None:
        if not self.pinned:
            self.proxy.count("pinned")
        if reason not in self.pinned and len(self.pinned) < 8:
            self.pinned.append(reason)

    def _forward(self, command: int, payload: bytes) -> None:
        """Send one command to the server session; its answer goes to the client by callbacks
        (rdsproxy_answer.py), then `answered` or `answer_lost`. The task reads the next command meanwhile."""
        server = self.server
        assert server is not None
        if command in F.NO_ANSWER:
            server.send(payload)
            self.answered(-1, False)
            return
        self.in_flight = True
        self.answer = Answer(self, server, command)
        self.answer.start()
        server.send(payload)

    def write_answer(self, data: bytes) -> None:
        if not self.closed and not self.writer.is_closing():
            self.writer.write(data)

    def answered(self, status: int, init_db_failed: bool) -> None:
        """The answer is complete: its status says whether a transaction is open; the server session goes
        back to the pool unless the session needs it (a transaction, pinned)."""
        self.in_flight = False
        if status >= 0:
            self.in_trans = bool(status & F.SERVER_STATUS_IN_TRANS)
        if init_db_failed:
            self.schema = self.login.database if self.login else ""
        if not self.in_trans and not self.pinned:
            self._release()

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
    async def _discard(self, seconds: float = 5.0, most: int = 128 << 20) -> None:
        """After a refusal: FIN, then read and drop what the client still sends (bounded), so the
        kernel does not answer it with RST, which would throw away the error the client has not read yet."""
        try:
            await self.writer.drain()
            if self.writer.can_write_eof():
                self.writer.write_eof()
            deadline = asyncio.get_event_loop().time() + seconds
            while most > 0:
                chunk = await asyncio.wait_for(self.reader.read(65536), deadline - asyncio.get_event_loop().time())
                if not chunk:
                    return
                most -= len(chunk)
        except (asyncio.TimeoutError, OSError, ValueError):
            pass

    def _flush(self) -> None:
        pending, self.pending, self.pending_size = self.pending, [], 0
        if pending and not self.closed and not self.writer.is_closing():
            self.writer.write(b"".join(pending))

    def _send(self, data: bytes) -> None:
        self._flush()  # the server's packets so far first (a result cut by an ERR is still in order)
        if not self.closed and not self.writer.is_closing():
            self.writer.write(data)
            self.seq_out = (data[3] + 1) & 0xFF if len(data) >= 4 else self.seq_out

    def _key(self) -> tuple:
        """What a pooled server session must share with this client session to serve it unchanged."""
        login = self.login
        assert login is not None
        return (login.user, self.schema, login.charset, login.capabilities & W.PROXY_CAPS,
                tuple(sorted(self.tracked.items())))

    def _release(self) -> None:
        """Give the server session back to the proxy's pool (transaction-level multiplexing)."""
        server, self.server = self.server, None
        if server is not None:
            self.proxy.pool.give(self._key(), self.server_generation, server)

    def _drop_server(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()

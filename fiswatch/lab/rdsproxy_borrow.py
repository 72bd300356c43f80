"""How an RDS Proxy client session gets a server session when none is at hand or idle in the pool.

`borrow` waits for a writer at most the borrow timeout (then ERR 9501, the lab's assumption), takes an
idle server session in the same state from the pool or logs in to the writer anew as the client's user,
and replays on a new one the session's tracked variables and pinning SETs. It answers the server session
and the writer generation it belongs to, or the ERR payload the client gets instead. Runs in the client
session's task on the lab's loop (rdsproxy_session.py): the only place a statement waits.
"""
import asyncio
from typing import Any, Optional, Sequence, Tuple

from fiswatch.lab import rdsproxy_wire as W
from fiswatch.lab.rdsproxy_backend import BackendError, ServerSession
from fiswatch.lab.wire import framing as F

LOST_WRITER = 1105  # as AWS's Aurora labs observed it
LOST_TEXT = ("the lab's RDS Proxy lost the writer (failover): %s; reconnect or retry "
             "(error 1105 as AWS's Aurora labs observed, text the lab's)")
BORROW_TIMEOUT_ERROR = 9501  # the lab's assumption (RDS Proxy's borrow timeout error, unverified)
TRY_AGAIN = 0.1  # seconds before another login when one failed (the writer going or coming)


async def borrow(proxy: Any, login: W.Login, key: Tuple[Any, ...],
                 replay: Sequence[str]) -> Tuple[Optional[ServerSession], int, Optional[bytes]]:
    """(server session, its generation, None) or (None, -1, ERR payload); `proxy` is the RdsProxy,
    `login` the client's (its schema now), `key` what a pooled server session must share (rdsproxy_pool.py)."""
    loop = asyncio.get_event_loop()
    deadline = loop.time() + proxy.borrow_timeout
    while True:
        writer = await proxy.wait_writer(deadline - loop.time())
        if writer is None:
            proxy.count("borrow_timeouts")
            return None, -1, timed_out("(the lab's RDS Proxy found no writer within %gs)" % proxy.borrow_timeout)
        generation = proxy.generation
        pooled = proxy.pool.take(key, generation)
        if pooled is not None:
            return pooled, generation, None
        try:
            server = await asyncio.wait_for(ServerSession.open(writer.name, writer.address, login,
                                                               proxy.password_of(login.user) or "", proxy.local_host),
                                            proxy.connect_timeout)
        except BackendError as exc:
            return None, -1, exc.packet[:F.MAX_PAYLOAD - 1] or W.err_packet(0, LOST_WRITER, str(exc))[4:]
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, W.ProtocolError):
            if loop.time() >= deadline:
                return None, -1, timed_out()
            await asyncio.sleep(TRY_AGAIN)
            continue
        try:
            for statement in replay:
                if generation != proxy.generation:
                    break
                if await asyncio.wait_for(server.ask_ok(statement), proxy.connect_timeout) is not None:
                    server.close()
                    return None, -1, W.err_packet(0, LOST_WRITER, LOST_TEXT % "a session variable could not be "
                                                  "replayed")[4:]
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, W.ProtocolError):
            server.close()  # the new server session died at once (the writer going again): try again
            await asyncio.sleep(TRY_AGAIN)
            continue
        except BaseException:
            server.close()  # the client session went (its task cancelled)
            raise
        if generation != proxy.generation:  # the writer went or a patch began meanwhile
            server.close()
            continue
        return server, generation, None


def timed_out(why: str = "") -> bytes:
    """The ERR payload of a borrow that ran out of time (9501, RDS Proxy's words; `why` the lab's).

    >>> timed_out()[3:]
    b'#HY000Timed-out waiting to acquire database connection'
    """
    text = "Timed-out waiting to acquire database connection" + (" " + why if why else "")
    return W.err_packet(0, BORROW_TIMEOUT_ERROR, text)[4:]

"""The lab's RDS Proxy in the wire accounting (lab/wire/accounting.py): what the proxy hands the lab's ledger.

The proxy terminates its clients' sessions (rdsproxy_session.py), so the instance proxies behind it see
only its own server sessions. Instead each client session of the proxy gets a wire Session with an
Accounting of its own (`account_factory`: instance = the proxy's name, `aurora-proxy` / `rds-proxy`;
endpoint = the cluster it fronts, `aurora` / `rds`, so a failover's verdict reads these writes as it
reads the cluster name's), fed the client's plaintext both ways:

  to the client   everything written to it (ClientSession.to_client: the proxy's greeting, the OK / ERR
                  packets it makes itself, its 1105s, the answers it forwards), as the bytes go out;
  from the client each complete packet the session reads (the login, every command), once the answer
                  before it is complete (`ClientAccount.from_client`).

The client is found as at the instance proxies: its `_pid` connection attribute, else the owner of its
socket to the proxy. A transaction the proxy ends (its 1105 after a lost writer or a patch) ends with
the client session: the Accounting counts it rolled back with the writes it held, as a connection that
ended mid-transaction.

The instance proxies do not account the proxy's own server sessions (`instance_sessions`: a peer at a
proxy's listen address gets the instance's rewriter and no Accounting): nothing is counted twice and
nothing is filed under the lab daemon's process.

Accounting never costs the client its session: a failing accounting call drops only the accounting of
that session (as lab/proxy.py does).
"""
from typing import Any, Callable, Collection, Optional, Tuple

from fiswatch.lab.wire.framing import COM_CHANGE_USER
from fiswatch.lab.wire.session import COMMAND, Session

Factory = Callable[[Tuple[str, int]], Any]
CHANGE_USER = bytes((COM_CHANGE_USER,))


class ClientAccount:
    """The accounting of one client session of the proxy (a wire Session), or nothing (`session` None)."""

    __slots__ = ("session",)

    def __init__(self, session: Optional[Session]) -> None:
        self.session = session

    def from_client(self, seq: int, payload: bytes) -> None:
        """A complete packet the client sent (the login, a command). COM_CHANGE_USER is not passed on: the
        proxy refuses it (1235) and the session stays as it was, where the wire Session would await a new login."""
        session = self.session
        if session is not None and not (seq == 0 and payload[:1] == CHANGE_USER and session.phase == COMMAND):
            try:
                session.client_packet(seq, payload)
            except Exception:  # noqa: BLE001 - the accounting goes, the client's session stays
                self.session = None

    def to_client(self, data: bytes) -> None:
        """Bytes written to the client (whole packets)."""
        session = self.session
        if session is not None:
            try:
                session.from_server(data)
            except Exception:  # noqa: BLE001
                self.session = None

    def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            try:
                session.close()
            except Exception:  # noqa: BLE001
                pass


NO_ACCOUNT = ClientAccount(None)


def client_account(factory: Optional[Factory], link: Any) -> ClientAccount:
    """The account of a ClientSession whose client is on `link` (rdsproxy_client.ClientLink): NO_ACCOUNT when
    the proxy accounts nothing (`factory` None: a proxy outside a lab), else the client's wire Session. The
    session feeds it in its two places: each packet it takes, each write to the client (`to_client`)."""
    if factory is None:
        return NO_ACCOUNT
    try:
        peer = link.get_extra_info("peername")
        session = factory(tuple(peer[:2]) if peer else ("", 0))
    except Exception:  # noqa: BLE001 - accounting must never cost the client its session
        session = None
    return NO_ACCOUNT if session is None else ClientAccount(session)


def account_factory(ledger: Any, proxy_name: str, cluster: str) -> Factory:
    """What an RdsProxy of a lab is given as `account`: each client session's wire Session, accounted in
    the lab's ledger under instance `proxy_name` and endpoint `cluster`."""
    return ledger.session_factory(proxy_name, None, cluster)


def instance_sessions(ledger: Any, instance: str, rewriter: Optional[Callable[[], Any]], cluster: str,
                      proxy_hosts: Collection[str]) -> Factory:
    """The session factory of an instance's FaultProxy (lab/daemon.py): accounted, except connections from
    an RDS Proxy's own address (`proxy_hosts`), which keep the rewriter (ALTER SYSTEM, topology answers)
    and nothing else: their clients are accounted at the proxy.

    >>> from fiswatch.lab.wire.accounting import Ledger
    >>> make = instance_sessions(Ledger(resolve_owner=False), "rds-1", None, "rds", ("127.0.9.51",))
    >>> make(("127.0.9.51", 40000)) is None, len(make(("127.0.0.1", 40000)).behaviours)
    (True, 1)
    """
    accounted = ledger.session_factory(instance, rewriter, cluster)
    if not proxy_hosts:
        return accounted
    hosts = frozenset(proxy_hosts)

    def make(peer: Tuple[str, int]) -> Any:
        if peer[0] in hosts:
            return Session(rewriter=rewriter()) if rewriter is not None else None
        return accounted(peer)
    return make

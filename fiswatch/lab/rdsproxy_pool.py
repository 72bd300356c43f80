"""The lab RDS Proxy's idle server sessions, shared between client sessions (multiplexing).

A client session borrows a server session for one statement, or for a whole transaction, and gives
it back when the answer leaves no transaction open and the session is not pinned (as AWS says RDS
Proxy multiplexes: per transaction). Idle server sessions are kept by what their state is: user,
schema, character set and the tracked session variables, so a borrowed one needs no replay. A
writer change empties the pool: its sessions belong to the old writer.
"""
from typing import Any, Dict, List, Optional, Tuple

MAX_IDLE = 64  # idle server sessions kept at most (the lab's bound); more are closed


class Pool:
    def __init__(self, max_idle: int = MAX_IDLE) -> None:
        self.max_idle = max_idle
        self._idle: Dict[Tuple[Any, ...], List[Any]] = {}
        self._count = 0
        self.generation = -1

    def take(self, key: Tuple[Any, ...], generation: int) -> Optional[Any]:
        if generation != self.generation:
            self.clear(generation)
            return None
        sessions = self._idle.get(key)
        if not sessions:
            return None
        self._count -= 1
        session = sessions.pop()
        if not sessions:
            del self._idle[key]
        return session

    def give(self, key: Tuple[Any, ...], generation: int, session: Any) -> None:
        if generation != self.generation or self._count >= self.max_idle:
            session.close()
            return
        self._idle.setdefault(key, []).append(session)
        self._count += 1

    def clear(self, generation: int = -1) -> None:
        """Close every idle session; from now on only sessions of `generation` are kept."""
        for sessions in self._idle.values():
            for session in sessions:
                session.close()
        self._idle.clear()
        self._count = 0
        self.generation = generation

    def __len__(self) -> int:
        return self._count

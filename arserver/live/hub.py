"""The live hub: committed changes in (from the bus), matched by area to sessions, out over
each client's connection. One asyncio loop owns all hub state; the bus calls in from any thread
through ``call_soon_threadsafe``.

Each connection has a reader task (client messages into its session) and a writer task (the
session's output onto the socket). Broadcast never waits for a client: ``dispatch`` only queues
into sessions (conflated, bounded in bytes) and wakes writers. A writer whose send does not
complete within ``send_timeout_s``, or a session whose queue overflows, is closed with 4008.

``revoke`` closes the connections of revoked tokens with 4003 and forgets their sessions; the
bus carries revocations between processes (``bus.token_revocations``), and ``dispatch`` takes
them out of each batch before anything in it reaches a client. A revoked (or expired) token id
is remembered only for ``revocation_memory_s``: authentication refuses the token by then (it
is revoked or expired in the token table, or past its own ``exp``), and a connection whose
authentication is older than that is refused too (``serve``'s ``authenticated_at``), so that
a token authenticated just before its revocation cannot slip in after it is forgotten.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from arserver.domain import Change
from arserver.live.bus import Bus, revoked_tokens
from arserver.live.frames import AlignmentLookup, with_alignment
from arserver.live.index import SubscriptionIndex
from arserver.live.mirror import RedisSessionMirror
from arserver.live.protocol import (
    CLOSE_SESSION_TAKEN,
    CLOSE_SLOW_CONSUMER,
    CLOSE_TOKEN_REVOKED,
    CLOSE_UNAUTHORISED,
    MAX_MESSAGE_BYTES,
    IndexChanges,
    Limits,
    Session,
    Subscription,
)
from arserver.live.state import LiveState

log = logging.getLogger(__name__)

#: How long a revoked token id is remembered (seconds). Longer than any authentication of the
#: live endpoint takes to reach ``serve`` (milliseconds; a handshake older than this is
#: refused); the memory only has to cover that gap.
REVOCATION_MEMORY_S = 600.0


class Connection(Protocol):
    """A WebSocket as the hub needs it (the API wraps Starlette's)."""

    async def receive_text(self) -> str | None:
        """The next text message; None once the client has gone."""

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass
class HubStats:
    connections: int = 0
    sessions: int = 0
    messages_sent: int = 0
    changes_dispatched: int = 0
    slow_consumers_closed: int = 0
    revoked_closed: int = 0  # connections closed because their token was revoked


class Hub:
    """``revocation_memory_s``: how long revoked token ids are remembered; ``clock``: the
    monotonic seconds that memory and ``serve``'s ``authenticated_at`` are measured in;
    ``alignments`` finds the stored alignments aligned frames name (None: only frames that
    carry their matrix)."""

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        flush_interval_s: float = 0.02,
        send_timeout_s: float = 10.0,
        mirror: RedisSessionMirror | None = None,
        revocation_memory_s: float = REVOCATION_MEMORY_S,
        clock: Callable[[], float] = time.monotonic,
        alignments: AlignmentLookup | None = None,
    ) -> None:
        if revocation_memory_s <= 0:
            raise ValueError("revoked tokens must be remembered for some time")
        self.limits = limits or Limits()
        self.mirror = mirror
        self.last_event_id: str | None = None  # bus position of the last dispatched batch
        self._bus: Bus | None = None
        self.flush_interval_s = flush_interval_s
        self.send_timeout_s = send_timeout_s
        self.state = LiveState()
        self.index: SubscriptionIndex[Subscription] = SubscriptionIndex()
        self.sessions: dict[str, Session] = {}
        self.stats = HubStats()
        self._wake: dict[str, asyncio.Event] = {}
        self._active: dict[str, Connection] = {}
        self._detached: dict[str, float] = {}  # session id -> monotonic expiry
        self._sending: dict[str, float] = {}  # session id -> loop time its current send began
        self._writers: dict[str, asyncio.Task[None]] = {}
        self._closing: set[asyncio.Task[None]] = set()  # closes under way (keep a reference)
        self.revocation_memory_s = revocation_memory_s
        self.clock = clock
        self.alignments = alignments
        # Token id -> clock time it is forgotten, oldest first (all kept equally long).
        self._revoked: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    # -- life cycle ---------------------------------------------------------------------

    async def start(self, bus: Bus, current: Sequence[Change] = ()) -> None:
        """Seed the state with what is live now, then follow the bus."""
        self._loop = asyncio.get_running_loop()
        self._bus = bus
        for change in current:
            self.state.apply(change)
        self._unsubscribe = bus.subscribe(self._from_bus)
        self.last_event_id = bus.position()
        self._sweeper = asyncio.create_task(self._sweep())

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.mirror is not None:
            self.mirror.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    def _from_bus(self, changes: Sequence[Change], position: str | None) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.dispatch, list(changes), position)

    # -- events -------------------------------------------------------------------------

    def dispatch(self, changes: Sequence[Change], position: str | None = None) -> None:
        """Queue each change for the subscriptions it matches (on the hub's loop). Token
        revocations in the batch are carried out first and go no further."""
        if position is not None:
            self.last_event_id = position
        revoked, changes = revoked_tokens(changes)
        if revoked:
            self._revoke(revoked)
        touched: dict[str, Session] = {}
        for change in changes:
            if not self.state.apply(change):
                continue
            self.stats.changes_dispatched += 1
            texts: dict[Any, str] = {}  # the item encoded once per frame, for all sessions
            for sub in self.index.candidates(change.lon, change.lat):
                if sub.wants(change):
                    sub.session.offer(sub, change, sub.item_text(change, texts))
                    touched[sub.session.id] = sub.session
        for session in touched.values():
            if session.close_code is not None:
                self._end(session)
            else:
                wake = self._wake.get(session.id)
                if wake is not None:
                    wake.set()

    # -- revocation ---------------------------------------------------------------------

    def revoke(self, token_ids: Collection[str]) -> int:
        """Close every connection whose session belongs to one of ``token_ids`` with 4003
        ("token revoked"), and forget those sessions, connected or detached, so that none
        can be resumed; connections of these tokens opened later are closed at once too.
        Returns how many connections were closed.

        Safe from any thread: the work is done on the hub's loop, and a caller on another
        thread waits for it (the closing frames themselves are sent afterwards). To reach the
        hubs of every process, publish ``arserver.live.bus.token_revocations(ids)`` on the bus
        instead: each hub's listener (this one's too) calls this."""
        ids = frozenset(token_ids)
        loop = self._loop
        if loop is None or not loop.is_running() or _running_loop() is loop:
            return self._revoke(ids)  # on the loop, or no loop runs: nothing else touches us
        done: concurrent.futures.Future[int] = concurrent.futures.Future()

        def work() -> None:
            try:
                done.set_result(self._revoke(ids))
            except BaseException as exc:  # the caller gets it, not the loop's handler
                done.set_exception(exc)

        try:
            loop.call_soon_threadsafe(work)
        except RuntimeError:  # the loop closed meanwhile: nothing runs on it any more
            return self._revoke(ids)
        return done.result()

    def owners(self) -> frozenset[str]:
        """The token ids of every session held now, connected or detached (on the hub's loop):
        what a periodic check of revoked or expired tokens has to look up."""
        return frozenset(session.owner for session in self.sessions.values())

    @property
    def remembered_revocations(self) -> int:
        """How many revoked token ids the hub remembers now (those revoked within
        ``revocation_memory_s``)."""
        self._prune_revoked()
        return len(self._revoked)

    def _prune_revoked(self) -> None:
        now = self.clock()
        while self._revoked:
            token_id, until = next(iter(self._revoked.items()))
            if until > now:
                return
            del self._revoked[token_id]

    def _refused(self, owner: str, authenticated_at: float | None) -> int | None:
        """The close code for a connection of ``owner`` (authenticated at ``authenticated_at``,
        clock seconds; None: just now), or None when it may be served."""
        self._prune_revoked()
        if owner in self._revoked:
            return CLOSE_TOKEN_REVOKED
        stale = authenticated_at is not None and (
            self.clock() - authenticated_at >= self.revocation_memory_s
        )
        return CLOSE_UNAUTHORISED if stale else None  # a revocation since may be forgotten

    def _revoke(self, token_ids: frozenset[str]) -> int:
        """``revoke``, on the loop (or with no loop running)."""
        self._prune_revoked()
        until = self.clock() + self.revocation_memory_s
        for token_id in token_ids:
            self._revoked.pop(token_id, None)  # to the end: the order stays oldest first
            self._revoked[token_id] = until
        closed = 0
        for session in [s for s in self.sessions.values() if s.owner in token_ids]:
            session.revoke()
            self._forget(session)
            if session.id in self._active:
                # Stop the writer mid-send if need be: nothing more goes to this client.
                # ``serve`` then closes the connection with the session's code.
                writer = self._writers.get(session.id)
                if writer is not None:
                    writer.cancel()
                closed += 1
        self.stats.revoked_closed += closed
        return closed

    async def _refuse(self, connection: Connection, code: int) -> None:
        reason = "token revoked" if code == CLOSE_TOKEN_REVOKED else "authenticate again"
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.close(code, reason), self.send_timeout_s)

    # -- connections --------------------------------------------------------------------

    async def serve(
        self,
        connection: Connection,
        owner: str,
        resume: tuple[str, int] | None = None,
        *,
        authenticated_at: float | None = None,
    ) -> None:
        """Run one client connection until it ends. ``owner``: the token id; ``resume``:
        (session id, last seq) the client asked to continue; ``authenticated_at``: when the
        token's check began (``clock`` seconds; None: it was checked just now). A token
        revoked since is refused with 4003; an authentication older than
        ``revocation_memory_s`` with 4001 (connect again)."""
        refused = self._refused(owner, authenticated_at)  # revoked after authentication
        if refused is not None:
            await self._refuse(connection, refused)
            return
        session, recovered = await self._open(owner, resume)
        refused = self._refused(owner, authenticated_at)  # revoked while it was being opened
        if refused is not None:
            session.revoke()
            self._forget(session)
            await self._refuse(connection, refused)
            return
        self._active[session.id] = connection
        self._detached.pop(session.id, None)
        wake = self._wake[session.id] = asyncio.Event()
        session.welcome(recovered)
        self._mirror(session, session.seq, subscriptions=True)
        wake.set()
        self.stats.connections += 1
        reader = asyncio.create_task(self._read(connection, session, wake))
        writer = asyncio.create_task(self._write(connection, session, wake))
        self._writers[session.id] = writer
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                task.cancel()
            for task in (reader, writer):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.stats.connections -= 1
            if self._active.get(session.id) is connection:
                del self._active[session.id]
                self._writers.pop(session.id, None)
                self._sending.pop(session.id, None)
                self._wake.pop(session.id, None)
                if session.close_code is not None:
                    self._forget(session)  # its memory goes now, not after the close
                    if session.close_code == CLOSE_SLOW_CONSUMER:
                        self.stats.slow_consumers_closed += 1
                    # A stalled socket may never take the close frame: do not wait for ever.
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(
                            connection.close(session.close_code, session.close_reason),
                            self.send_timeout_s,
                        )
                else:
                    self._detached[session.id] = time.monotonic() + self.limits.retention_s

    async def _open(
        self, owner: str, resume: tuple[str, int] | None
    ) -> tuple[Session, bool | None]:
        if resume is not None:
            session = self.sessions.get(resume[0])
            if session is not None and self.mirror is not None and session.id not in self._active:
                # Another process may have served it since it left here: the mirror knows.
                mirrored = await asyncio.to_thread(self.mirror.seq_of, session.id)
                if mirrored is not None and mirrored > session.seq:
                    self._forget(session)
                    session = None
            if session is not None and session.owner == owner and session.close_code is None:
                self._take_over(session.id)
                return session, session.resume(resume[1], time.time())
            if session is None and self.mirror is not None:
                adopted = await self._adopt(owner, *resume)
                if adopted is not None:
                    return adopted
        session = Session(secrets.token_urlsafe(16), owner, self.state, self.limits)
        self.sessions[session.id] = session
        self.stats.sessions = len(self.sessions)
        return session, (False if resume is not None else None)

    def _take_over(self, session_id: str) -> None:
        """The client came back before we noticed it had gone: stop the old connection's
        writer before the resume decides what to replay (so that it cannot take more), and
        close the old connection with 4009."""
        writer = self._writers.pop(session_id, None)
        if writer is not None:
            writer.cancel()
        previous = self._active.pop(session_id, None)
        if previous is not None:
            closing = asyncio.create_task(previous.close(CLOSE_SESSION_TAKEN, "resumed elsewhere"))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def _adopt(
        self, owner: str, session_id: str, last_seq: int
    ) -> tuple[Session, bool] | None:
        """Continue a session another process served, from its mirror: replay what it sent
        after ``last_seq``, then what the bus carried since its checkpoint that the client has
        not seen (newer than the newest item it was sent, per key)."""
        if self.mirror is None or self._bus is None:
            return None
        stored = await asyncio.to_thread(self.mirror.load, session_id)
        if stored is None or stored.owner != owner:
            return None
        session = Session(session_id, owner, self.state, self.limits)
        subscriptions = session.restore(stored.seq, stored.history, stored.subscriptions)
        self.sessions[session_id] = session
        self.stats.sessions = len(self.sessions)
        for sub in subscriptions:
            self.index.add(sub)
        recovered = session.resume(last_seq, time.time())
        if recovered and stored.checkpoint is not None:
            seen = session.seen()
            batches = await asyncio.to_thread(self._bus.replay, stored.checkpoint)
            for _, changes in batches:
                for change in changes:
                    texts: dict[Any, str] = {}
                    for sub in session.subscriptions.values():
                        if sub.wants(change) and change.time > seen.get((sub.id, change.key), ""):
                            session.offer(sub, change, sub.item_text(change, texts))
        elif recovered:
            recovered = stored.seq == last_seq and session.idle
        return session, recovered

    def _mirror(self, session: Session, since: int, *, subscriptions: bool = False) -> None:
        """Queue the session's state and what it sent after ``since`` for other processes."""
        if self.mirror is None:
            return
        meta: dict[str, object] = {"owner": session.owner, "seq": str(session.seq)}
        if session.idle and self.last_event_id is not None:
            meta["checkpoint"] = self.last_event_id
        if subscriptions:
            meta["subscriptions"] = [s.describe() for s in session.subscriptions.values()]
        self.mirror.record(session.id, meta, session.sent_after(since))

    async def _read(self, connection: Connection, session: Session, wake: asyncio.Event) -> None:
        while True:
            text = await connection.receive_text()
            if text is None:
                return
            if (
                self.alignments is not None
                and '"aligned"' in text
                and len(text) <= MAX_MESSAGE_BYTES  # a longer one is refused unread
            ):
                text = await asyncio.to_thread(with_alignment, text, session.owner, self.alignments)
            changes = session.receive(text, time.monotonic())
            self._apply(changes)
            if changes.added or changes.removed:
                self._mirror(session, session.seq, subscriptions=True)
            wake.set()

    def _apply(self, changes: IndexChanges) -> None:
        for sub in changes.removed:
            self.index.remove(sub)
        for sub in changes.added:
            self.index.add(sub)

    async def _write(self, connection: Connection, session: Session, wake: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None
        last_flush = 0.0
        while True:
            await wake.wait()
            wake.clear()
            pause = last_flush + self.flush_interval_s - loop.time()
            if pause > 0:  # gather what arrives meanwhile into the same frames
                await asyncio.sleep(pause)
            last_flush = loop.time()
            before = session.seq
            texts, due = session.take(time.monotonic(), time.time())
            self._mirror(session, before)
            for text in texts:
                # The sweeper cancels a send that takes longer than send_timeout_s (cheaper
                # than a timer per message).
                self._sending[session.id] = loop.time()
                await connection.send_text(text)
                self.stats.messages_sent += 1
            self._sending.pop(session.id, None)
            if session.close_code is not None:
                return
            if due is not None:
                if timer is not None:
                    timer.cancel()
                timer = loop.call_later(max(due - time.monotonic(), 0.0), wake.set)

    def _end(self, session: Session) -> None:
        """A session closed by the hub (overflow): stop its connection's tasks, or drop it
        if it has none."""
        if session.id in self._active:
            wake = self._wake.get(session.id)
            if wake is not None:
                wake.set()  # the writer sees close_code and returns
        else:
            self._forget(session)

    def _forget(self, session: Session) -> None:
        for sub in session.subscriptions.values():
            self.index.remove(sub)
        self.sessions.pop(session.id, None)
        self._detached.pop(session.id, None)
        self.stats.sessions = len(self.sessions)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.send_timeout_s / 4))
            for session_id, began in list(self._sending.items()):
                if loop.time() - began > self.send_timeout_s:
                    stalled = self.sessions.get(session_id)
                    if stalled is not None:
                        stalled.close(CLOSE_SLOW_CONSUMER, "sending to the client stalled")
                    writer = self._writers.get(session_id)
                    if writer is not None:
                        writer.cancel()
                    self._sending.pop(session_id, None)
            self._prune_revoked()
            now = time.monotonic()
            for session_id, expiry in list(self._detached.items()):
                session = self.sessions.get(session_id)
                if session is None or expiry <= now:
                    if session is not None:
                        self._forget(session)
                    self._detached.pop(session_id, None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None

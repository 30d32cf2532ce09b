"""A team on one database: who is acting, who is answering a mention right now, and which
`watch` process polls which job.

Names: every state change, assignment and reply records who made it: MENTIONWATCH_USER,
else `[me] name` in the config, else the operating-system user.

Claims: before posting, `reply` claims the mention in the database (store.claim, one
atomic statement on either engine); a second person replying at the same moment is told
who is answering and posts nothing, unless they pass --force. A claim expires after
CLAIM_SECONDS, so a process killed mid-reply blocks nobody for long.

Leases: several `watch` processes on one PostgreSQL database split the (source × term)
jobs. Each lease lasts a few intervals and is renewed while its holder lives; a killed
worker's lease runs out and another worker takes the job on its next tick. A one-shot
`poll` (cron) takes only the jobs no live process holds, for the length of its run, and
says which it left to whom. Nothing here imports a driver or asyncio: `feed` and `handle`
read `me()`.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mentionwatch.errors import EXIT_FAILED, MentionwatchError

if TYPE_CHECKING:
    from mentionwatch.config import Config
    from mentionwatch.store import Store

USER_ENV = "MENTIONWATCH_USER"
# Long enough to read a preview, confirm and post; short enough that a reply killed
# half-way does not keep a teammate out for long.
CLAIM_SECONDS = 600.0
MAX_NAME = 100


def me(config: Config | None = None) -> str:
    """Who is acting: MENTIONWATCH_USER, else [me] name, else the OS user."""
    name = os.environ.get(USER_ENV, "").strip()
    if not name and config is not None and config.me:
        name = config.me.strip()
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no user name for this uid (a bare container)
            name = f"uid {os.getuid()}" if hasattr(os, "getuid") else "someone"
    return clean_name(name)


def clean_name(name: str) -> str:
    """A person's name as stored and shown: inert, one line, not too long."""
    from mentionwatch.text import inert

    return " ".join(inert(name).split())[:MAX_NAME]


class Claimed(MentionwatchError):
    """Someone else is answering this mention right now (exit 1: nothing was posted)."""

    code = EXIT_FAILED


@dataclass
class Claim:
    """Our claim on one mention, released when the reply is done (or has failed)."""

    store: Store
    mention_id: int
    token: str

    def release(self) -> None:
        self.store.release(self.mention_id, self.token)


def claim(store: Store, mention_id: int, actor: str, force: bool = False) -> Claim:
    """Claim a mention for answering it, or raise Claimed naming who holds it."""
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
    holder = store.claim(mention_id, actor, token, CLAIM_SECONDS, force=force)
    if holder is not None:
        raise Claimed(
            f"{holder['actor']} is answering mention {mention_id} (since {holder['at']}); "
            "nothing posted. Look at 'mentionwatch show "
            f"{mention_id}' once they are done, or pass --force to reply anyway"
        )
    return Claim(store, mention_id, token)


def answered_by_other(store: Store, mention_id: int, actor: str) -> Any | None:
    """The reply someone else already posted (or made by hand) to this mention, if any."""
    for row in store.replies(mention_id):
        if row["outcome"] in ("posted", "link") and row["actor"] and row["actor"] != actor:
            return row
    return None


def worker_name() -> str:
    """A `watch` process's name in the leases table: host and PID, unique while it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


# A lease outlives one interval a little (jitter, a slow save), so a live worker keeps its
# jobs from one poll to the next, and a dead one's are free again soon after they were due.
LEASE_SLACK = 1.25
LEASE_GRACE = 2.0  # seconds


def lease_seconds(interval: float) -> float:
    return interval * LEASE_SLACK + LEASE_GRACE


class Leases:
    """This `watch` process's share of the polling jobs on a shared database.

    At each poll of a source the worker takes its share of that source's jobs (jobs ÷ live
    workers, rounded up): those it held, then free or expired ones; jobs beyond its share are
    given back, so a worker that joins gets work at the others' next polls. While a poll
    runs its leases are renewed; when the process stops they are given back at once."""

    def __init__(self, store: Store, holder: str | None = None) -> None:
        self.store = store
        self.holder = holder or worker_name()
        self.held: dict[str, list[str]] = {}  # source -> its jobs this worker holds
        self.polling: set[str] = set()

    def take(self, source: str, seconds: float, jobs: list[str]) -> list[str]:
        workers = self.store.workers(self.holder, seconds * 2)
        share = -(-len(jobs) // workers)
        got = self.store.take_jobs(jobs, self.holder, seconds, share)
        self.held[source] = got
        self.polling.add(source)
        return got

    def done(self, source: str) -> None:
        self.polling.discard(source)

    def renew(self, seconds: float) -> None:
        """Keep the jobs of the polls in progress; say this worker is alive."""
        self.store.workers(self.holder, seconds * 2)
        for source in list(self.polling):
            self.held[source] = self.store.renew_jobs(self.held.get(source, []), self.holder,
                                                      seconds)  # fmt: skip

    def give_back(self) -> None:
        jobs = [j for held in self.held.values() for j in held]
        self.store.drop_jobs(jobs, self.holder, retire=True)
        self.held.clear()


# A one-shot poll holds its jobs for its whole run, without renewing them: this long at
# most. Its leases end sooner when it finishes, or when its connection goes (a killed poll).
ONE_SHOT_SECONDS = 900.0
ONE_SHOT_PREFIX = "poll "


@dataclass
class OneShot:
    """`poll` on a shared database: it polls the jobs nobody holds (leasing them while it
    runs, so a watch worker leaves them alone meanwhile) and skips the ones a running
    `watch` (or another poll) holds: that process polls them on its own schedule."""

    store: Store
    holder: str = field(default_factory=lambda: ONE_SHOT_PREFIX + worker_name())
    got: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # job -> who holds it

    def take(self, jobs: list[str]) -> list[str]:
        self.got = self.store.take_jobs(jobs, self.holder, ONE_SHOT_SECONDS, len(jobs))
        held = {lease.job: lease.who for lease in job_leases(self.store) if lease.holder}
        self.skipped = {j: held.get(j) or "another process" for j in jobs if j not in self.got}
        return self.got

    def give_back(self) -> None:
        with contextlib.suppress(Exception):  # unreturned leases end with the connection
            self.store.drop_jobs(self.got, self.holder)
        self.got = []

    def summary(self) -> str | None:
        """One line: which jobs were left to which running process, or None."""
        if not self.skipped:
            return None
        holders = sorted(set(self.skipped.values()))
        jobs = sorted(self.skipped)
        shown = ", ".join(jobs[:5]) + (f" and {len(jobs) - 5} more" if len(jobs) > 5 else "")
        from mentionwatch.text import inert

        return inert(f"poll: skipped {len(jobs)} job(s) leased to {', '.join(holders)} "
                     f"(running, they poll them on their own schedule): {shown}")  # fmt: skip


@dataclass(frozen=True)
class JobLease:
    """Who polls a job now (None: nobody; its last holder's lease has ended)."""

    job: str  # "source scope"
    holder: str | None
    until: datetime | None  # the lease's end, while held

    @property
    def who(self) -> str:
        """The holder as people read it: "watch HOST:PID" or "poll HOST:PID"."""
        if self.holder is None or self.holder.startswith(ONE_SHOT_PREFIX):
            return self.holder or "nobody"
        return f"watch {self.holder}"


def job_leases(store: Store) -> list[JobLease]:
    """Every polling job's lease on a shared database, live holders only."""
    from mentionwatch.models import parse_iso, utcnow

    now = utcnow()
    leases = []
    for row in store.leases():
        until = parse_iso(row["expires_at"]) if row["expires_at"] else None
        live = row["holder"] is not None and until is not None and until > now
        live = live and not row["gone"]
        leases.append(JobLease(row["job"], row["holder"] if live else None,
                               until if live else None))  # fmt: skip
    return leases

"""A concurrency soak on PostgreSQL: 3 `watch` workers and 3 people at once.

    python benchmarks/soak.py [--minutes 5] [--interval 1] [--db postgresql://…]

Against the loopback web (Hacker News and Mastodon, which keep getting new posts), three
`mentionwatch watch` processes share one PostgreSQL database, while three people (loops of
`MENTIONWATCH_USER=alice|bob|carol mentionwatch reply|handle|ignore|reopen|assign …`) race
each other on the newest mentions. Halfway through, the worker holding the most jobs is
killed with SIGKILL and a new one started a little later. Every process is the real CLI.

At the end it checks, on content:
- every post the platforms got is stored once, and every stored mention is one they served;
- no (source, job) was fetched by two workers at overlapping times (each worker reaches
  the web through its own door, so the request log says who asked what, when);
- the webhook got each delivery ID once and each stored mention once;
- no mention got two replies on the platform (nor two posted replies in the database);
- every history row and reply names the person whose command made it;
- the killed worker's jobs were taken over (how fast), and the survivors stop cleanly with
  their leases given back.

Without --db it starts a throwaway PostgreSQL cluster (testing/postgres.py). It prints the
numbers and every problem found; exit 1 when there is one. tests/test_soak.py runs it for
about half a minute.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mentionwatch import engines
from mentionwatch.testing.platforms import mastodon
from mentionwatch.testing.receivers import Receivers
from mentionwatch.testing.server import LoopbackWeb, Request

PEOPLE = ("alice", "bob", "carol")
WORDS = ("acme", "widgetly", "gizmo")
HOOK = "/hooks/soak"

CONFIG = """
[[terms]]
name = "pebblebase"
query = "pebblebase OR #pebblebase"

{more_terms}
[sources.hackernews]
base_url = "{web}/hackernews/api/v1"

[sources.mastodon]
base_url = "{web}/mastodon"
token = "{token}"

[poll]
backoff = 0.01
retries = 2
timeout = 10

[[alerts]]
name = "all"
to = ["{hook}"]
"""


def config_text(web: str, hook: str) -> str:
    more = "".join(f'[[terms]]\nname = "{w}"\nquery = "{w}"\n\n' for w in WORDS)
    return CONFIG.format(more_terms=more, web=web, token=mastodon.TOKEN, hook=hook)


@dataclass
class Action:
    """One command a person ran."""

    person: str
    verb: str
    mention: int
    args: list[str]
    race: bool = False  # all three replied to this mention at once
    code: int = -1
    err: str = ""
    start: float = 0.0
    end: float = 0.0


@dataclass
class Report:
    seconds: float = 0.0
    added: int = 0  # posts the platforms got during the run
    stored: int = 0
    requests: int = 0  # searches the workers made
    runs: int = 0  # job polls (a job's requests one after another from one worker)
    deliveries: int = 0  # distinct delivery IDs the webhook got
    resent: int = 0  # deliveries the killed worker sent and died before marking sent
    actions: collections.Counter[str] = field(default_factory=collections.Counter)
    replies_posted: int = 0
    races: int = 0  # mentions all three replied to at the same moment
    left_pending: int = 0  # alerts still queued when the workers stopped (a poll sent them)
    command_ms: list[float] = field(default_factory=list)
    takeover: float | None = None  # seconds from the kill until all its jobs were held again
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        ms = sorted(self.command_ms) or [0.0]
        out = [
            f"ran {self.seconds:.0f} s: {self.added} posts added, {self.stored} mentions stored, "
            f"{self.requests} searches in {self.runs} job polls, {self.deliveries} webhook "
            f"deliveries (+{self.resent} resent after the kill; {self.left_pending} still "
            "queued at the stop, sent by one more poll), "
            f"{self.replies_posted} replies posted, {self.races} three-way races",
            "people: " + ", ".join(f"{k} {v}" for k, v in sorted(self.actions.items())),
            f"people's commands: median {statistics.median(ms):.0f} ms, "
            f"p95 {ms[int(len(ms) * 0.95)]:.0f} ms",
            "kill -9: "
            + ("no takeover seen" if self.takeover is None
               else f"its jobs all held again after {self.takeover:.1f} s"),
        ]  # fmt: skip
        out += [f"PROBLEM: {p}" for p in self.problems] or ["no problems"]
        return out


class Worker:
    """`mentionwatch watch`, reaching the loopback web through its own door (its HTTP proxy),
    so that the request log says which worker asked; every worker has the same config."""

    def __init__(self, soak: Soak, name: str) -> None:
        self.name = name
        argv = [sys.executable, "-m", "mentionwatch", "--config", str(soak.config), "--db",
                soak.db, "watch", "--interval", f"{soak.interval}s", "--log-format",
                "json"]  # fmt: skip
        # The webhook receiver is reached straight, not through the door.
        env = {**os.environ, "http_proxy": soak.web.door(name),
               "no_proxy": f"all://127.0.0.1:{soak.rx.port}"}  # fmt: skip
        for name_ in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
            env.pop(name_, None)
        self.log = open(soak.dir / f"{name}.log", "w+", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        self.holder = f"{os.uname().nodename}:{self.proc.pid}"

    def lines(self) -> list[str]:
        self.log.flush()
        return Path(self.log.name).read_text(encoding="utf-8").splitlines()

    def started(self) -> bool:
        return any('"start"' in line for line in self.lines())


class Soak:
    def __init__(self, db: str, folder: Path, seconds: float, interval: float = 1.0,
                 seed: int = 1) -> None:  # fmt: skip
        self.db, self.dir, self.seconds, self.interval = db, folder, seconds, interval
        self.random = random.Random(seed)
        self.web = LoopbackWeb()
        self.rx = Receivers()
        self.hook = ""
        self.config = folder / "config.toml"
        self.added: list[tuple[str, float]] = []  # (key, when) of each post added
        self.actions: list[Action] = []
        self.stopping = threading.Event()
        self.barrier = threading.Barrier(len(PEOPLE))
        self.race_target: list[int] = []
        self.report = Report()
        self.killed: tuple[Worker, float] | None = None

    # The pieces

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        db = engines.connect(self.db)
        try:
            return [tuple(r) for r in db.execute(query, params).fetchall()]
        finally:
            db.close()

    def _produce(self) -> None:
        """New posts on both platforms, about one a second each, until the end."""
        hn, masto = self.web.platform("hackernews"), self.web.platform("mastodon")
        n = 0
        while not self.stopping.wait(self.random.uniform(0.3, 1.2)):
            n += 1
            word = self.random.choice(WORDS)
            self.added.append((hn.add_item(f"pebblebase and {word}? soak {n}", time.time()),
                               time.time()))  # fmt: skip
            self.added.append((masto.add_item(f"{word} question, soak {n}", time.time()),
                               time.time()))  # fmt: skip

    def _person(self, person: str) -> None:
        """Act on the newest mentions, as teammates working one inbox do (so they collide);
        every third action (the first too) all three reply to one mention at the same moment."""
        rnd = random.Random(f"{person}{self.random.random()}")
        n = 0
        while not self.stopping.is_set():
            if not self._ready():
                time.sleep(0.2)
                continue
            n += 1
            race = n % 3 == 1  # the first action is one: a short run has races too
            if race:
                try:  # all three here; one picks the mention; all three go
                    if self.barrier.wait(60) == 0:
                        self.race_target = self._unanswered(1)
                    self.barrier.wait(60)
                except threading.BrokenBarrierError:
                    return
                verb, targets = "reply", self.race_target
            else:
                verb = rnd.choices(["reply", "handle", "assign", "reopen", "ignore"],
                                   [4, 2, 2, 1, 1])[0]  # fmt: skip
                targets = self._unanswered(2) if verb == "reply" else self._newest(2)
            if not targets:
                time.sleep(0.2)
                continue
            target = rnd.choice(targets)
            tag = f"{person} #{n}"
            args = {
                "reply": [str(target), f"Thanks, from {tag}", "--yes"],
                "handle": [str(target), "--note", tag],
                "ignore": [str(target), "--note", tag],
                "reopen": [str(target), "--note", tag],
                "assign": [str(target), rnd.choice(PEOPLE)],
            }[verb]
            self.actions.append(self._act(person, verb, target, args, race))

    def _act(self, person: str, verb: str, target: int, args: list[str], race: bool) -> Action:
        action = Action(person, verb, target, args, race=race, start=time.monotonic())
        done = subprocess.run(
            [sys.executable, "-m", "mentionwatch", "--config", str(self.config), "--db",
             self.db, verb, *args],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "MENTIONWATCH_USER": person},
        )  # fmt: skip
        action.code, action.err, action.end = done.returncode, done.stderr, time.monotonic()
        return action

    def _newest(self, limit: int) -> list[int]:
        newest = "SELECT id FROM mentions WHERE status = 'open' ORDER BY id DESC LIMIT ?"
        return [r[0] for r in self.sql(newest, limit)]

    def _unanswered(self, limit: int) -> list[int]:
        """The newest open Mastodon mentions nobody has replied to."""
        return [r[0] for r in self.sql(
            "SELECT id FROM mentions m WHERE status = 'open' AND source = 'mastodon' AND NOT "
            "EXISTS (SELECT 1 FROM replies r WHERE r.mention_id = m.id) ORDER BY id DESC "
            "LIMIT ?", limit)]  # fmt: skip

    def _ready(self) -> bool:
        """The workers have made the tables: every migration is recorded. (A person's
        query while a worker's migration still holds its tables can end in "deadlock
        detected", which killed that person's thread and left the run without races.)"""
        from mentionwatch.store import MIGRATIONS

        try:
            (done,) = self.sql("SELECT count(*) FROM _migrations")[0]
        except Exception:  # not yet
            return False
        return done >= len(MIGRATIONS)

    def _leases(self) -> dict[str, str]:
        """Polling jobs held now: job -> holder."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return dict(self.sql(
            "SELECT job, holder FROM leases WHERE holder IS NOT NULL AND expires_at > ? "
            "AND job NOT LIKE 'worker %' AND job NOT LIKE 'deliver %'", now))  # fmt: skip

    # The run

    def run(self) -> Report:
        with self.web, self.rx:
            self.hook = self.rx.url(HOOK)
            self.config.write_text(config_text(self.web.url, self.hook))
            self.config.chmod(0o600)  # it holds a (test) token
            started = time.monotonic()
            workers = [Worker(self, f"w{i}") for i in range(1, 4)]
            threads = [threading.Thread(target=self._produce, daemon=True)]
            threads += [threading.Thread(target=self._person, args=(p,), daemon=True)
                        for p in PEOPLE]  # fmt: skip
            try:
                for t in threads:
                    t.start()
                time.sleep(self.seconds / 2)
                workers.append(self._kill_one(workers))
                time.sleep(max(0.0, started + self.seconds - time.monotonic()))
                self.stopping.set()
                self.barrier.abort()
                for t in threads:
                    t.join(180)
                self._settle(workers)
            finally:
                self.stopping.set()
                self.barrier.abort()
                for w in workers:
                    if w.proc.poll() is None:
                        w.proc.send_signal(signal.SIGTERM)
                codes = {w.name: w.proc.wait(30) for w in workers}
            self.report.seconds = time.monotonic() - started
            self._flush()
            self._check(workers, codes)
            with open(self.dir / "requests.jsonl", "w", encoding="utf-8") as out:
                for q in self.web.seen("/"):
                    out.write(json.dumps({"door": q.door, "at": q.at, "done": q.done,
                                          "method": q.method, "path": q.path,
                                          "query": q.query}) + "\n")  # fmt: skip
        return self.report

    def _kill_one(self, workers: list[Worker]) -> Worker:
        """SIGKILL the worker holding the most jobs; wait until others hold all its jobs;
        start a new worker."""
        held = self._leases()
        counts = collections.Counter(held.values())
        victim = max(workers, key=lambda w: counts.get(w.holder, 0))
        theirs = [job for job, holder in held.items() if holder == victim.holder]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        at = time.monotonic()
        self.killed = (victim, time.time())
        limit = at + self.interval * 4 + 10
        while time.monotonic() < limit:
            now = self._leases()
            if all(now.get(job) not in (None, victim.holder) for job in theirs):
                self.report.takeover = time.monotonic() - at
                break
            time.sleep(0.1)
        if not theirs:
            self.report.problems.append("the killed worker held no job (nothing to take over)")
        elif self.report.takeover is None:
            self.report.problems.append(f"the killed worker's jobs {theirs} were not taken "
                                        f"over within {limit - at:.0f} s")  # fmt: skip
        fresh = Worker(self, "w4")
        end = time.monotonic() + 60
        while not fresh.started() and time.monotonic() < end and fresh.proc.poll() is None:
            time.sleep(0.1)
        return fresh

    def _settle(self, workers: list[Worker]) -> None:
        """Wait until every post added is stored and every alert sent (a few intervals)."""
        end = time.monotonic() + self.interval * 6 + 30
        keys = {k for k, _ in self.added}
        while time.monotonic() < end:
            stored = {k for (k,) in self.sql("SELECT key FROM mentions")}
            pending = self.sql("SELECT count(*) FROM outbox WHERE state != 'sent'")[0][0]
            if keys <= stored and pending == 0:
                return
            time.sleep(0.25)

    def _flush(self) -> None:
        """Alerts still queued when the workers stopped (they flush for a moment only) go
        out with the next poll: one `mentionwatch poll`, through a door of its own."""
        left = self.sql("SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0]
        self.report.left_pending = left
        if not left:
            return
        env = {**os.environ, "http_proxy": self.web.door("final"),
               "no_proxy": f"all://127.0.0.1:{self.rx.port}"}  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "mentionwatch", "--config", str(self.config), "--db", self.db,
             "poll", "--quiet"], capture_output=True, text=True, timeout=600, env=env,
        )  # fmt: skip
        if done.returncode != 0:
            self.report.problems.append(f"the last poll exited {done.returncode}: "
                                        f"{done.stderr.strip()[-300:]}")  # fmt: skip

    # The checks

    def _check(self, workers: list[Worker], codes: dict[str, int]) -> None:
        r, problems = self.report, self.report.problems
        rows = self.sql("SELECT id, key, source FROM mentions")
        keys = [k for _, k, _ in rows]
        r.added, r.stored = len(self.added), len(keys)
        if len(keys) != len(set(keys)):
            problems.append(f"{len(keys) - len(set(keys))} mention(s) stored twice")
        missing = {k for k, _ in self.added} - set(keys)
        if missing:
            problems.append(f"{len(missing)} post(s) never stored, e.g. {sorted(missing)[:3]}")
        served = _served_keys(self.web)
        strays = set(keys) - served
        if strays:
            problems.append(f"{len(strays)} stored mention(s) no platform served: "
                            f"{sorted(strays)[:3]}")  # fmt: skip
        self._check_overlaps()
        self._check_deliveries(set(keys))
        self._check_replies({i: k for i, k, _ in rows})
        self._check_history()
        for w in workers:
            expected = -signal.SIGKILL if self.killed and w is self.killed[0] else 0
            if codes[w.name] != expected:
                problems.append(f"worker {w.name} exited {codes[w.name]}: {w.lines()[-3:]}")
        left = self.sql("SELECT job, holder FROM leases WHERE holder IS NOT NULL AND job NOT "
                        "LIKE 'deliver %'")  # fmt: skip
        left = [(j, h) for j, h in left if self.killed is None or h != self.killed[0].holder]
        if left:
            problems.append(f"leases left after the workers stopped: {left}")

    def _check_overlaps(self) -> None:
        """No job fetched by two workers at once: a job's requests from one worker one after
        another make one poll of it; two workers' polls of one job never overlap."""
        runs: dict[str, list[tuple[float, float, str]]] = collections.defaultdict(list)
        gap = self.interval * 0.4
        requests = [q for q in self.web.seen("/") if q.door.startswith("w")]
        by_worker: dict[tuple[str, str], list[Request]] = collections.defaultdict(list)
        for q in requests:
            job = _job_of(q)
            if job:
                by_worker[(q.door, job)].append(q)
        self.report.requests = sum(len(v) for v in by_worker.values())
        for (door, job), asked in by_worker.items():
            asked.sort(key=lambda q: q.at)
            start, end = asked[0].at, asked[0].done or asked[0].at
            for q in asked[1:]:
                if q.at - end > gap:
                    runs[job].append((start, end, door))
                    start = q.at
                end = max(end, q.done or q.at)
            runs[job].append((start, end, door))
        self.report.runs = sum(len(v) for v in runs.values())
        overlaps = []
        for job, polls in runs.items():
            polls.sort()
            for i, (s1, e1, d1) in enumerate(polls):
                for s2, e2, d2 in polls[i + 1 :]:
                    if s2 >= e1:
                        break
                    if d1 != d2:
                        overlaps.append(f"{job}: {d1} {s1:.2f}-{e1:.2f}, {d2} {s2:.2f}-{e2:.2f}")
        if overlaps:
            self.report.problems.append(f"{len(overlaps)} job poll(s) overlapped another "
                                        f"worker's: {overlaps[:3]}")  # fmt: skip
        if self.killed:
            victim, at = self.killed
            theirs = {job for job, polls in runs.items() for _, e, d in polls if d == victim.name}
            resumed = {job for job, polls in runs.items() for s, _, d in polls
                       if d != victim.name and s > at}  # fmt: skip
            if theirs - resumed:
                self.report.problems.append(f"the killed worker's jobs {sorted(theirs - resumed)} "
                                            "were never polled again")  # fmt: skip

    def _check_deliveries(self, stored: set[str]) -> None:
        got = [(q.json(), q.at) for q in self.rx.seen(HOOK)]
        ids = collections.Counter(body["delivery"] for body, _ in got)
        self.report.deliveries, self.report.resent = len(ids), len(got) - len(ids)
        twice = [i for i, n in ids.items() if n > 1]
        if self.killed:  # sent by the killed worker, which died before marking it sent
            at = self.killed[1]
            first = {}
            for body, when in got:
                first.setdefault(body["delivery"], when)
            twice = [i for i in twice if not at - 2.0 <= first[i] <= at]
        if twice:
            times = collections.defaultdict(list)
            for body, when in got:
                times[body["delivery"]].append(f"{when:.2f}")
            kill = f" (the kill at {self.killed[1]:.2f})" if self.killed else ""
            examples = [(i[:8], times[i]) for i in twice[:3]]
            self.report.problems.append(f"{len(twice)} delivery ID(s) received twice{kill}: "
                                        f"{examples}")  # fmt: skip
        mentions = collections.Counter(body["mention"]["key"] for body, _ in got)
        if set(mentions) != stored:
            self.report.problems.append(
                f"webhook: {len(stored - set(mentions))} stored mention(s) never alerted, "
                f"{len(set(mentions) - stored)} alerted but not stored"
            )
        again = [k for k, n in mentions.items() if n > 1 and k]
        if len(again) > len(ids) - len(set(ids)) and not self.killed:
            self.report.problems.append(f"{len(again)} mention(s) alerted twice")

    def _check_replies(self, keys: dict[int, str]) -> None:
        r, problems = self.report, self.report.problems
        for a in self.actions:
            r.command_ms.append((a.end - a.start) * 1000)
            r.actions[f"{a.verb} {_outcome(a)}"] += 1
            if _outcome(a) == "failed":
                problems.append(f"{a.person}: {a.verb} {' '.join(a.args)} exited {a.code}: "
                                f"{a.err.strip()[-300:]}")  # fmt: skip
        races = collections.defaultdict(list)
        for a in self.actions:
            if a.race:
                races[a.mention].append(a)
        r.races = len(races)
        for mention, racers in races.items():
            won = [a.person for a in racers if a.code == 0]
            if len(racers) == len(PEOPLE) and len(won) != 1:
                problems.append(f"three replied to {mention} at once: {won or 'nobody'} posted")
        posted = self.web.platform("mastodon").posted
        r.replies_posted = len(posted)
        per = collections.Counter(s.get("in_reply_to_id") for s in posted)
        twice = [p for p, n in per.items() if n > 1]
        if twice:
            problems.append(f"{len(twice)} Mastodon post(s) got several replies: {twice[:3]}")
        rows = self.sql("SELECT mention_id, count(*) FROM replies WHERE outcome = 'posted' "
                        "GROUP BY mention_id HAVING count(*) > 1")  # fmt: skip
        if rows:
            problems.append(f"mentions with several posted replies: {rows[:3]}")
        if len(posted) != sum(1 for a in self.actions if a.verb == "reply" and a.code == 0):
            problems.append(f"{len(posted)} replies on the platform, "
                            f"{r.actions.get('reply ok', 0)} reply commands succeeded")  # fmt: skip

    def _check_history(self) -> None:
        """Each history row, assignment and reply names the person whose command made it."""
        problems = self.report.problems
        wrong = []
        for note, actor in self.sql("SELECT note, actor FROM status_log WHERE note LIKE '% #%'"):
            who = note.split(" #")[0].split()[-1]
            if who in PEOPLE and actor != who:
                wrong.append((note, actor))
        for text, actor in self.sql("SELECT text, actor FROM replies"):
            who = text.split("from ")[-1].split(" #")[0]
            if who in PEOPLE and actor != who:
                wrong.append((text, actor))
        tried = {(a.mention, a.args[1], a.person) for a in self.actions if a.verb == "assign"}
        for row in self.sql("SELECT mention_id, assignee, actor FROM status_log WHERE "
                            "assignee IS NOT NULL AND assignee != ''"):  # fmt: skip
            if row not in tried:
                wrong.append(row)
        if wrong:
            problems.append(f"{len(wrong)} history row(s) name the wrong person: {wrong[:3]}")
        noted = self.sql("SELECT count(*) FROM status_log WHERE note LIKE '% #%'")[0][0]
        done = sum(1 for a in self.actions if a.verb in ("handle", "ignore", "reopen")
                   and a.code == 0 and "0 of" not in a.err)  # fmt: skip
        if noted < done:
            problems.append(f"{done} status changes made, {noted} in the history")


def _outcome(a: Action) -> str:
    if a.code == 0:
        return "ok"
    if a.verb == "reply" and a.code == 1 and ("is answering" in a.err or "already replied"
                                              in a.err):  # fmt: skip
        return "refused"
    return "failed"


def _job_of(q: Request) -> str | None:
    """Which polling job a request to the loopback web belongs to."""
    if q.path.startswith("/hackernews/api/v1/search"):
        return f"hackernews {q.arg('query')}"
    if q.path.startswith("/mastodon/api/v1/timelines/tag/"):
        return f"mastodon tag {q.path.rsplit('/', 1)[-1]}"
    if q.path.startswith("/mastodon/instances/") and "/timelines/tag/" in q.path:
        return f"mastodon {q.path.split('/')[3]} tag {q.path.rsplit('/', 1)[-1]}"
    if q.path == "/mastodon/api/v2/search" and q.arg("type") == "statuses":
        return f"mastodon search {q.arg('q')}"
    return None


def _served_keys(web: LoopbackWeb) -> set[str]:
    """The key of every item the two platforms could have served."""
    hn = web.platform("hackernews")
    keys = {f"hackernews:{h['objectID']}" for h in hn.hits()}
    masto = web.platform("mastodon")
    for host in ("home", "fosstodon.org"):
        for status in masto.instance(host)["statuses"]:
            keys |= {f"mastodon:{s['uri']}" for s in (status, status.get("reblog")) if s}
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=1.0, help="watch --interval, seconds")
    parser.add_argument("--db", help="a PostgreSQL URL (default: a throwaway cluster)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep the configs, the workers' logs and the request log here",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mentionwatch-soak-") as scratch:
        tmp = args.keep or scratch
        Path(tmp).mkdir(parents=True, exist_ok=True)
        cluster = None
        db = args.db
        if db is None:
            from mentionwatch.testing.postgres import Cluster

            pg_dir = Path(tempfile.mkdtemp(prefix="mentionwatch-pg-"))
            cluster = Cluster(pg_dir)
            db = cluster.start()
        try:
            report = Soak(db, Path(tmp), args.minutes * 60, args.interval, args.seed).run()
        finally:
            if cluster is not None:
                cluster.stop()
    for line in report.lines():
        print(line)
    print(json.dumps({"added": report.added, "stored": report.stored,
                      "deliveries": report.deliveries, "takeover_s": report.takeover,
                      "problems": len(report.problems)}))  # fmt: skip
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())

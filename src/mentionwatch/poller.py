"""Running every (source × term) job concurrently and saving what they find.

Each job fetches pages from its source; every mention is verified by the local matcher,
tagged with a sentiment when it is new, and saved together with the cursor in one
transaction. A failing job is recorded with its message and never stops the others.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mentionwatch import relevance
from mentionwatch.config import Config, SourceSettings
from mentionwatch.errors import UsageError
from mentionwatch.http import Http, SourceError, open_client
from mentionwatch.models import (
    Job,
    JobResult,
    Mention,
    OutboxItem,
    PollReport,
    Term,
    account_key,
    parse_iso,
)
from mentionwatch.query import Matcher
from mentionwatch.sources import registry
from mentionwatch.sources.base import Source
from mentionwatch.store import Store
from mentionwatch.tagging import Tagger, analyzer_for, stale_note
from mentionwatch.text import inert, inert_fields


class PollError(UsageError):
    """The poll cannot start (nothing to poll, unknown source or term)."""


class PollInterrupted(KeyboardInterrupt):
    """Ctrl-C during a poll; `report` holds what each job had saved by then.

    A KeyboardInterrupt, so code that stops on Ctrl-C keeps doing so."""

    def __init__(self, report: PollReport) -> None:
        super().__init__("interrupted")
        self.report = report


@dataclass
class StoreState:
    """The State a source sees: its own slice of the source_state table."""

    store: Store
    source: str

    def get(self, key: str) -> str | None:
        return self.store.get_state(self.source, key)

    def set(self, key: str, value: str | None) -> None:
        self.store.set_state(self.source, key, value)


@dataclass
class Poller:
    config: Config
    store: Store
    only_sources: Sequence[str] = ()
    only_terms: Sequence[str] = ()
    on_job_done: Callable[[JobResult], None] = lambda result: None
    on_jobs: Callable[[int], None] = lambda count: None
    notify: Callable[[str], None] | None = None
    analyzer_name: str | None = None
    # Turns the new mentions of a page into alert deliveries, saved in the page's transaction.
    queue: Callable[[list[Mention]], Iterable[OutboxItem]] | None = None
    # Shared polling (watch on PostgreSQL): given the jobs' names ("source scope"), the ones
    # this process may run now (team.Leases); the others are another worker's this time.
    take: Callable[[list[str]], Collection[str]] | None = None
    _run: str = field(default_factory=lambda: uuid.uuid4().hex)
    _tagger: Tagger | None = None  # built on the first new mention (the analyzer loads then)

    def terms(self) -> list[Term]:
        known = {t.name for t in self.config.terms}
        for name in self.only_terms:
            if name not in known:
                raise PollError(f"unknown term {name!r} (configured: {', '.join(known) or 'none'})")
        terms = [t for t in self.config.terms if not self.only_terms or t.name in self.only_terms]
        if not terms:
            raise PollError("no terms configured: add a [[terms]] table to the config")
        return terms

    def settings(self) -> list[SourceSettings]:
        enabled = {s.name: s for s in self.config.enabled_sources()}
        for name in self.only_sources:
            if name not in registry():
                raise PollError(f"unknown source {name!r} (known: {', '.join(registry())})")
            if name not in enabled:
                raise PollError(f"source {name!r} is not enabled in the config")
        chosen = [s for n, s in enabled.items() if not self.only_sources or n in self.only_sources]
        if not chosen:
            raise PollError("no source is enabled: add a [sources.NAME] table to the config")
        return [s.usable() for s in chosen]  # only these need their ${VAR}s

    def run(self) -> PollReport:
        """Poll every chosen source; Ctrl-C raises PollInterrupted with what was saved."""
        self.check_applies()
        try:
            return asyncio.run(self.arun())
        except KeyboardInterrupt:
            raise PollInterrupted(getattr(self, "report", PollReport())) from None

    def check_applies(self) -> None:
        """A poll where no chosen term is for any chosen source would do nothing, and say
        "0 new" as if it had looked: say why instead (a term's `sources` list)."""
        names = [s.name for s in self.settings()]  # first: its errors come before terms'
        terms = self.terms()
        if any(t.applies_to(name) for t in terms for name in names):
            return
        on = ", ".join(names)
        limits = "; ".join(f"term {t.name!r} is only for {', '.join(t.sources or ())}"
                           for t in terms)  # fmt: skip
        raise PollError(f"nothing to poll on {on}: {limits}; poll one of those, or add {on} to"
                        " a term's sources in the config")  # fmt: skip

    async def arun(self) -> PollReport:
        """The poll, in a running event loop (watch runs one per source at once)."""
        chosen, terms = self.settings(), self.terms()
        self.report = PollReport()
        # Decisions made since the last poll (handle, ignore, replies) teach relevance first.
        relevance.learn_now(self.config, self.store)
        await self._poll(terms, chosen)
        analyzer = self._tagger.analyzer if self._tagger else None
        spent = getattr(analyzer, "summary", None)
        requests: int = getattr(analyzer, "requests", 0)
        if spent is not None and self.notify is not None and requests:
            self.notify(spent())  # what the LLM analyzer spent
        return self.report

    async def _poll(self, terms: list[Term], chosen: list[SourceSettings]) -> None:
        self.matcher = Matcher(list(self.config.terms))
        self.ignored = {account_key(a) for a in self.config.poll.ignore_authors}
        host_limits: dict[str, asyncio.Semaphore] = {}
        async with open_client(self.config.poll) as client:
            work = []
            for settings in chosen:
                source = build_source(settings, self.config, self.store, client, host_limits,
                                      self.notify)  # fmt: skip
                missing = source.missing_credentials()
                if missing:
                    self.report.results.append(
                        self._record(JobResult(settings.name, "*", error=missing))
                    )
                    continue
                work += [(source, job) for job in source.jobs(terms)]
            if self.take is not None:
                mine = self.take([job_name(job) for _, job in work])
                work = [(source, job) for source, job in work if job_name(job) in mine]
            self.on_jobs(len(work))
            # Results are in the report from the start, so an interrupted poll can still say
            # what each job saved.
            results = [JobResult(job.source, job.scope) for _, job in work]
            self.report.results.extend(results)
            jobs = zip(work, results, strict=True)
            await asyncio.gather(*(self._job(src, job, result) for (src, job), result in jobs))

    async def _job(self, source: Source, job: Job, result: JobResult) -> None:
        problems: list[str] = []
        try:
            cursor = self.store.get_cursor(job.source, job.scope)
            async for page in source.fetch(job, cursor):
                # The boundary: platform text becomes inert here, before matching and storing.
                mentions = self._verified([inert_fields(m) for m in page.mentions], job)
                result.fetched += len(page.mentions)
                self._tag_new(mentions)
                result.new += self.store.save_page(
                    job.source, job.scope, mentions, page.cursor, queue=self.queue
                )
                if page.note:
                    result.notes.append(page.note)
                if page.reads is not None:
                    result.reads = (result.reads or 0) + page.reads
                problems += page.problems
        except SourceError as exc:
            result.error = _named(job.source, str(exc))
            result.retry_after = getattr(exc, "wait", None)
        except asyncio.CancelledError:  # Ctrl-C: what was saved stays saved
            result.interrupted = True
            self._record(result)
            raise
        except Exception as exc:  # a bug or a hostile response must not stop other sources
            result.error = inert(f"{job.source}: unexpected {type(exc).__name__}: {exc}")
        if problems:
            result.error = inert(_problem_line(job.source, result.error, problems))
        self._record(result)

    def _record(self, result: JobResult) -> JobResult:
        self.store.log_poll(self._run, result)
        self.on_job_done(result)
        return result

    def _verified(self, mentions: list[Mention], job: Job) -> list[Mention]:
        kept = []
        owned = [t.name for t in self.config.terms if t.applies_to(job.source)] if job.owned else []
        for m in mentions:
            if account_key(m.author) in self.ignored:
                continue
            m.terms = self.matcher.matching_terms(m.source, m.match_text) or owned
            if job.owned:
                m.extra["addressed"] = True
            if m.terms:
                kept.append(m)
        return kept

    def _tag_new(self, mentions: list[Mention]) -> None:
        new = self.store.unknown_keys([m.key for m in mentions])
        if not new:
            return
        if self._tagger is None:  # the analyzer loads on the first new mention only
            analyzer = analyzer_for(self.config, self.store, self.analyzer_name, self.notify)
            self._tagger = Tagger(self.config, self.store, analyzer)
            note = stale_note(self.store, analyzer)
            if note and self.notify:
                self.notify(note)
        self._tagger.tag([m for m in mentions if m.key in new])


def job_name(job: Job) -> str:
    """A job's name among every worker's: its source and its cursor's scope."""
    return f"{job.source} {job.scope}"


def build_source(
    settings: SourceSettings,
    config: Config,
    store: Store,
    client: Any,
    host_limits: dict[str, asyncio.Semaphore] | None = None,
    notify: Callable[[str], None] | None = None,
) -> Source:
    """A source instance wired to the shared HTTP client and its slice of the database.

    Raises ConfigError when its settings are unusable (an unset ${VAR}): using a source is
    what needs its credentials."""
    settings = settings.usable()
    http = Http(settings.name, client, config.poll, {} if host_limits is None else host_limits,
                notify)  # fmt: skip
    return registry()[settings.name](settings, http, StoreState(store, settings.name), config.poll)


@dataclass
class SourceCheck:
    name: str
    ok: bool
    message: str


def check_sources(config: Config, store: Store) -> list[SourceCheck]:
    """One cheap call per enabled source, concurrently: what works and what does not."""

    async def run() -> list[SourceCheck]:
        async with open_client(config.poll) as client:
            return list(await asyncio.gather(*(
                _check(build_source(s, config, store, client)) if not s.problem
                else _unusable(s) for s in config.enabled_sources()
            )))  # fmt: skip

    return asyncio.run(run())


async def _unusable(settings: SourceSettings) -> SourceCheck:
    return SourceCheck(settings.name, False, settings.problem or "")


async def _check(source: Source) -> SourceCheck:
    missing = source.missing_credentials()
    if missing:
        return SourceCheck(source.name, False, missing)
    try:
        return SourceCheck(source.name, True, await source.check())
    except SourceError as exc:
        return SourceCheck(source.name, False, str(exc))
    except NotImplementedError:
        return SourceCheck(source.name, False, f"{source.name}: no check available")
    except Exception as exc:
        return SourceCheck(source.name, False, f"{source.name}: unexpected {type(exc).__name__}")


def _problem_line(source: str, error: str | None, problems: list[str]) -> str:
    """One line: the job's error (if any), then the first few problems of its pages."""
    shown = list(dict.fromkeys(problems))
    more = f" (and {len(shown) - 3} more)" if len(shown) > 3 else ""
    parts = ([error] if error else []) + shown[:3]
    return _named(source, "; ".join(parts) + more)


def _named(source: str, line: str) -> str:
    """Every error line starts with the source it is about."""
    return line if line.startswith(f"{source}: ") else f"{source}: {line}"


@dataclass
class SourceOverview:
    name: str
    state: str  # enabled, disabled, not configured
    credentials: str  # what is set or missing; never a value
    last_poll: datetime | None = None
    new: int = 0
    fetched: int = 0
    errors: list[str] = field(default_factory=list)
    usage: str | None = None  # the quota or budget left, where the source counts it


def source_overview(config: Config, store: Store) -> list[SourceOverview]:
    """Every known source: configured or not, credentials present, the last poll's result."""
    last = store.last_polls()
    rows = []
    for name in registry():
        settings = config.sources.get(name)
        if settings is None:
            row = SourceOverview(name, "not configured", "-")
        else:
            state = "enabled" if settings.enabled else "disabled"
            if settings.problem:  # an unset ${VAR}: say which, as the credentials' state
                row = SourceOverview(name, state, f"missing: ${{{settings.unset}}} is not set")
            else:
                source = build_source(settings, config, store, client=None)
                row = SourceOverview(name, state, _credentials(source), usage=source.usage())
        jobs = last.get(name, [])
        if jobs:
            row.last_poll = parse_iso(max(j["finished_at"] for j in jobs))
            row.new = sum(j["new"] or 0 for j in jobs)
            row.fetched = sum(j["fetched"] or 0 for j in jobs)
            row.errors = [j["error"] for j in jobs if j["error"]]
        rows.append(row)
    return rows


def _credentials(source: Source) -> str:
    missing = source.missing_credentials()
    if missing:
        return missing.split(": ", 1)[-1]
    if source.credentials():
        return source.credentials() or ""
    if source.oauth is not None:  # acting as the user: whether `auth` was run, never a token
        from mentionwatch.oauth import Tokens

        return Tokens(source, source.oauth).status()
    secrets = [k for k, o in source.options.items() if o.secret]
    if source.required:
        return "present"
    if not secrets:
        return "not needed"
    have = [k for k in secrets if source.settings.get(k)]
    return f"optional: {', '.join(have)} set" if have else f"optional: {', '.join(secrets)} not set"

"""Reading and validating the TOML config into frozen dataclasses.

Every problem is a ConfigError whose message names the file, the line when it can be found,
the key, and what was expected, so the CLI can print it as one line and exit 2.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mentionwatch.errors import ConfigError
from mentionwatch.models import ANALYZER_NAMES, Option, Template, Term, parse_duration

if TYPE_CHECKING:
    from mentionwatch.alerts import AlertRule

__all__ = ["Config", "ConfigError", "LLMSettings", "PollSettings", "SourceSettings", "load"]

APP_NAME = "mentionwatch"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class SourceSettings:
    """A [sources.NAME] table, checked against the source's options."""

    name: str
    enabled: bool = True
    base_url: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    interval: float | None = None  # seconds between polls in `watch` (None: the default)
    # Why this source cannot be used yet (an unset ${VAR} in its table). Only commands that
    # touch the source fail on it, so one missing token never stops feed, export or sources.
    problem: str | None = None
    unset: str | None = None  # the variable that is not set

    def get(self, key: str) -> Any:
        return self.options.get(key)

    def usable(self) -> SourceSettings:
        """These settings, or the ConfigError that stops a command which needs them."""
        if self.problem:
            raise ConfigError(self.problem)
        return self


@dataclass(frozen=True)
class PollSettings:
    """[poll]: how polls treat the platforms."""

    timeout: float = 20.0  # seconds per request
    per_host: int = 4  # concurrent requests to one host
    retries: int = 3
    backoff: float = 1.0  # first retry delay; doubles each time
    max_wait: float = 120.0  # longest rate-limit wait before giving up on a source
    lookback_days: int = 7  # how far back the first poll of a term looks
    user_agent: str | None = None
    ignore_authors: tuple[str, ...] = ()  # your own accounts: their posts are not mentions
    interval: float = 300.0  # seconds between polls of a source in `watch`


@dataclass(frozen=True)
class LLMSettings:
    """[sentiment.llm]: the optional LLM analyzer (the user's own model through `llm`)."""

    model: str | None = None  # an `llm` model id or alias; None: llm's default model
    batch_size: int = 20  # mentions per request
    max_per_run: int = 200  # mentions sent per poll or rescore; the rest: local analyzer
    requests_per_minute: float = 20.0  # pace of requests (provider rate limits)


_LLM_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "model": (str, "an llm model id or alias"),
    "batch_size": (int, "a number of mentions per request"),
    "max_per_run": (int, "a number of mentions"),
    "requests_per_minute": ((int, float), "a number of requests per minute"),
}


@dataclass(frozen=True)
class Config:
    """The whole config, checked; `path` None: no file, the defaults."""

    path: Path | None
    db_path: Path
    terms: tuple[Term, ...] = ()
    sources: Mapping[str, SourceSettings] = field(default_factory=dict)
    poll: PollSettings = PollSettings()
    templates: Mapping[str, Template] = field(default_factory=dict)
    analyzer: str | None = None
    llm: LLMSettings = LLMSettings()
    alerts: tuple[AlertRule, ...] = ()
    warnings: tuple[str, ...] = ()  # for the user, once (e.g. a readable config with secrets)
    db_url: str | None = None  # a PostgreSQL database shared by a team, instead of db_path
    me: str | None = None  # [me] name: who acts in this config's commands (see team.py)

    @property
    def database(self) -> Path | str:
        """Where the mentions are: a PostgreSQL URL, or the SQLite file."""
        return self.db_url or self.db_path

    def enabled_sources(self) -> list[SourceSettings]:
        return [s for s in self.sources.values() if s.enabled]

    def secrets(self) -> list[str]:
        """Every configured secret value (and any password inside a URL), so the scrubber
        can remove them from every message."""
        from mentionwatch.engines.urls import password

        found = []
        for settings in self.sources.values():
            from mentionwatch.sources import registry

            spec = registry().get(settings.name)
            for key, option in spec.options.items() if spec else ():
                value = settings.options.get(key)
                if option.secret and isinstance(value, str) and value:
                    found.append(value)
            for value in (settings.base_url, *settings.options.values()):
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, str) and "@" in item and (secret := password(item)):
                        found.append(secret)
        if self.alerts:
            from mentionwatch.alerts import url_secrets

            for rule in self.alerts:
                found += [rule.secret] if rule.secret else []
                found += [s for url in rule.to for s in url_secrets(url)]
        if self.db_url and (secret := password(self.db_url)):
            found.append(secret)
        return found


class UnsetVariable(ConfigError):
    """A ${VAR} the config names is not in the environment."""

    def __init__(self, message: str, variable: str) -> None:
        super().__init__(message)
        self.variable = variable


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP_NAME) / "config.toml"


def default_db_path() -> Path:
    from platformdirs import user_data_path

    return user_data_path(APP_NAME) / "mentions.db"


def resolve_config_path(cli_value: Path | None) -> Path:
    if cli_value is not None:
        return cli_value
    env = os.environ.get("MENTIONWATCH_CONFIG")
    return Path(env) if env else default_config_path()


def example_text() -> str:
    """The commented example config shipped in the package (the repo's config.example.toml)."""
    packaged = Path(__file__).with_name("config.example.toml")
    if packaged.exists():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).parents[2] / "config.example.toml").read_text(encoding="utf-8")


def write_starter(path: Path) -> None:
    """The commented starter config, owner-only (it will hold credentials)."""
    from mentionwatch.files import write_private

    write_private(path, example_text())


# tomllib reads ~6 MB/s; tomli's compiled wheels (the same parser, built with mypyc) read a
# config of 10,000 terms 3x faster but take ~6 ms to import: worth it only for big files.
_BIG_TOML = 64 * 1024


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    parser: Any = tomllib
    if len(text) > _BIG_TOML:
        import tomli as parser
    try:
        data: dict[str, Any] = parser.loads(text)
    except parser.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return data


def load(
    config_path: Path | None = None,
    db_override: Path | str | None = None,
    *,
    required: bool = False,
) -> Config:
    """Load the config (or defaults when the file is absent and not required)."""
    path = resolve_config_path(config_path)
    explicit = config_path is not None or "MENTIONWATCH_CONFIG" in os.environ
    if not path.exists():
        if required or explicit:
            raise ConfigError(
                f"{path}: config file not found; run 'mentionwatch init' to write one"
                " or pass --config PATH"
            )
        db_path = _chosen_file(db_override) or default_db_path()
        return _with_database(Config(path=None, db_path=db_path), db_override, None)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    data = _parse_toml(path, text)
    parser = _Parser(path, text)
    config = parser.config(data, db_override)
    from mentionwatch import scrub

    scrub.register(*config.secrets())
    if parser.literal_secrets:
        from mentionwatch.files import readable_by_others

        if readable_by_others(path):
            key = parser.literal_secrets[0]
            warning = (
                f"warning: {path} holds a secret ({key}) and other users can read it: run "
                f"'chmod 600 {path}', or put the secret in an environment variable (${{VAR}})"
            )
            config = replace(config, warnings=(*config.warnings, warning))
    return config


def _file_path(configured: str | None, config_dir: Path | None) -> Path:
    if configured:
        db = Path(configured).expanduser()
        return db if db.is_absolute() or config_dir is None else config_dir / db
    return default_db_path()


def _chosen_file(cli_value: Path | str | None) -> Path | None:
    """The database file --db or MENTIONWATCH_DB names (None: neither, or a URL): when one
    is given, the platform's default path is never looked up (platformdirs costs start-up)."""
    from mentionwatch.engines import is_url

    chosen = _chosen(cli_value)
    return Path(chosen).expanduser() if chosen and not is_url(chosen) else None


def _chosen(cli_value: Path | str | None) -> str | None:
    return str(cli_value) if cli_value is not None else os.environ.get("MENTIONWATCH_DB")


def _with_database(config: Config, cli_value: Path | str | None, url: str | None) -> Config:
    """The database: --db, else MENTIONWATCH_DB, else [storage] url, else [storage] db (as
    read into `config.db_path`). --db and the variable take a file path or a URL."""
    from mentionwatch.engines import is_url

    chosen = _chosen(cli_value)
    if chosen:
        if is_url(chosen):
            return replace(config, db_url=chosen)
        return replace(config, db_path=Path(chosen).expanduser(), db_url=None)
    return replace(config, db_url=url) if url else config


_TOP_KEYS = {
    "storage": "table with 'db' or 'url'",
    "me": "table with 'name'",
    "terms": "array of [[terms]] tables",
    "sources": "table of [sources.NAME] tables",
    "poll": "table",
    "templates": 'table of name = "text" or name = {public = "…", private = "…"}',
    "sentiment": "table with 'analyzer' and [sentiment.llm]",
    "alerts": "array of [[alerts]] tables",
}
_POLL_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "timeout": ((int, float), "a number of seconds"),
    "per_host": (int, "an integer"),
    "retries": (int, "an integer"),
    "backoff": ((int, float), "a number of seconds"),
    "max_wait": ((int, float), "a number of seconds"),
    "lookback_days": (int, "a number of days"),
    "user_agent": (str, "a string"),
    "ignore_authors": (list, "a list of account names"),
    "interval": ((str, int, float), "a duration such as 5m"),
}


class _Parser:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.literal_secrets: list[str] = []  # keys whose secret is written in the file

    def fail(self, key: str, reason: str) -> ConfigError:
        line = self._line_of(key)
        where = f"{self.path}:{line}" if line else str(self.path)
        return ConfigError(f"{where}: {key}: {reason}")

    def _line_of(self, dotted: str) -> int | None:
        """Best-effort line number of a dotted key: its table header, then the key under it."""
        parts = [p for p in re.split(r"\.|\[\d+\]", dotted) if p]
        index = re.search(r"\[(\d+)\]", dotted)
        header_idx, start = None, 0
        if parts[0] in ("terms", "alerts") and index:
            seen = -1
            for i, line in enumerate(self.lines):
                if line.strip().replace(" ", "").startswith(f"[[{parts[0]}]]"):
                    seen += 1
                    if seen == int(index.group(1)):
                        header_idx = start = i
                        break
        elif len(parts) > 1:
            for depth in range(len(parts) - 1, 0, -1):
                header = "[" + ".".join(parts[:depth]) + "]"
                for i, line in enumerate(self.lines):
                    if line.strip().replace(" ", "") == header:
                        header_idx = start = i
                        break
                if header_idx is not None:
                    break
        last = parts[-1]
        key_re = re.compile(rf"^\s*\"?{re.escape(last)}\"?\s*=")
        for i in range(start, len(self.lines)):
            if i > start and self.lines[i].lstrip().startswith("[") and header_idx is not None:
                break
            if key_re.match(self.lines[i]):
                return i + 1
        return header_idx + 1 if header_idx is not None else None

    def expand(self, key: str, value: Any) -> Any:
        """Substitute ${VAR} in strings (recursively), failing on an unset variable."""
        if isinstance(value, str):

            def sub(match: re.Match[str]) -> str:
                name = match.group(1)
                if name not in os.environ:
                    error = self.fail(
                        key, f"environment variable {name} is not set; export it or edit the value"
                    )
                    raise UnsetVariable(str(error), name)
                return os.environ[name]

            return _VAR.sub(sub, value)
        if isinstance(value, list):
            return [self.expand(f"{key}[{i}]", v) for i, v in enumerate(value)]
        return value

    def check_type(
        self,
        key: str,
        value: Any,
        expected: type | tuple[type, ...],
        what: str,
        secret: bool = False,
    ) -> Any:
        shown = "" if secret else f" {value!r}"  # a secret is never quoted, even a wrong one
        if isinstance(value, bool) and expected not in (bool, (bool,)):
            raise self.fail(key, f"expected {what}, got{shown or ' a boolean'}")
        if not isinstance(value, expected):
            raise self.fail(key, f"expected {what}, got {type(value).__name__}{shown}")
        return value

    def config(self, data: dict[str, Any], db_override: Path | str | None) -> Config:
        from mentionwatch.engines import is_url

        for key in data:
            if key not in _TOP_KEYS:
                raise self.fail(key, f"unknown key (expected one of: {', '.join(_TOP_KEYS)})")
        storage = self.table("storage", data.get("storage", {}))
        self.only("storage", storage, {"db", "url"})
        db = self.expand("storage.db", storage.get("db"))
        if db is not None:
            self.check_type("storage.db", db, str, "a file path string")
        url = self.expand("storage.url", storage.get("url"))
        if url is not None:
            self.check_type("storage.url", url, str, "a postgresql:// URL", secret=True)
            if not is_url(url):
                raise self.fail("storage.url", "expected a postgresql://USER@HOST/DATABASE URL "
                                "(for a SQLite file, use db = PATH)")  # fmt: skip
            from mentionwatch.engines.urls import password

            if password(url) and "${" not in str(storage.get("url")):
                self.literal_secrets.append("storage.url")  # a password written in the file
        me = self.table("me", data.get("me", {}))
        self.only("me", me, {"name"})
        name = self.expand("me.name", me.get("name"))
        if name is not None:
            self.check_type("me.name", name, str, "your name, as teammates know you")
            if not name.strip():
                raise self.fail("me.name", "is empty: give your name, or remove the key")
        sources = self.sources(data.get("sources", {}))
        terms = self.terms(data.get("terms", []), set(sources))
        sentiment = self.table("sentiment", data.get("sentiment", {}))
        self.only("sentiment", sentiment, {"analyzer", "llm"})
        analyzer = sentiment.get("analyzer")
        if analyzer is not None:
            self.check_type("sentiment.analyzer", analyzer, str, "an analyzer name")
            if analyzer.strip().lower() not in ANALYZER_NAMES:
                raise self.fail("sentiment.analyzer", f"unknown analyzer {analyzer!r} "
                                f"(choose from: {', '.join(ANALYZER_NAMES)})")  # fmt: skip
        templates = self.templates(self.table("templates", data.get("templates", {})))
        alerts = self.alerts(data["alerts"], [t.name for t in terms]) if "alerts" in data else ()
        config = Config(
            path=self.path,
            db_path=_chosen_file(db_override) or _file_path(db, self.path.parent),
            terms=terms,
            sources=sources,
            poll=self.poll(data.get("poll", {})),
            templates=templates,
            analyzer=analyzer,
            llm=self.llm(sentiment.get("llm", {})),
            alerts=alerts,
            me=name.strip() if name else None,
        )
        return _with_database(config, db_override, url)

    def templates(self, table: dict[str, Any]) -> dict[str, Template]:
        """Each entry is the public reply's text, or a table pairing a public reply with a
        private follow-up (`reply --template NAME` posts one, then sends the other)."""
        found = {}
        for name, value in table.items():
            key = f"templates.{name}"
            if isinstance(value, str):
                found[name] = Template(public=value)
                continue
            if not isinstance(value, dict):
                raise self.fail(key, f"expected the reply text or a table with public and/or "
                                f"private, got {type(value).__name__}")  # fmt: skip
            self.only(key, value, {"public", "private"})
            for part in ("public", "private"):
                if part in value:
                    self.check_type(f"{key}.{part}", value[part], str, "the text")
            if not value:
                raise self.fail(key, 'give public = "…", private = "…", or both')
            found[name] = Template(public=value.get("public"), private=value.get("private"))
        return found

    def llm(self, value: Any) -> LLMSettings:
        table = self.table("sentiment.llm", value)
        self.only("sentiment.llm", table, _LLM_KEYS)
        for key, (expected, what) in _LLM_KEYS.items():
            if key in table:
                self.check_type(f"sentiment.llm.{key}", table[key], expected, what)
                if key != "model" and table[key] <= 0:
                    raise self.fail(f"sentiment.llm.{key}", f"expected {what} above 0")
        return LLMSettings(**table)

    def table(self, key: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table ([{key}]), got {type(value).__name__}")
        return value

    def only(self, key: str, table: Mapping[str, Any], allowed: set[str] | Mapping) -> None:
        for name in table:
            if name not in allowed:
                choices = ", ".join(sorted(allowed)) or "none"
                raise self.fail(f"{key}.{name}", f"unknown key (expected one of: {choices})")

    def terms(self, value: Any, source_names: set[str]) -> tuple[Term, ...]:
        from mentionwatch.query import QueryError, parse

        if not isinstance(value, list):
            raise self.fail("terms", "expected an array of [[terms]] tables")
        terms: list[Term] = []
        names: set[str] = set()
        for i, raw in enumerate(value):
            key = f"terms[{i}]"
            raw = self.table(key, raw)
            self.only(key, raw, {"name", "query", "sources", "about", "not_about"})
            query = self.check_type(
                f"{key}.query", raw.get("query", raw.get("name")), str, "a query"
            )
            name = self.check_type(f"{key}.name", raw.get("name", query), str, "a string")
            try:
                parse(query)
            except QueryError as exc:
                raise self.fail(f"{key}.query", f"{exc} in {query!r}") from None
            sources = raw.get("sources")
            if sources is not None:
                self.check_type(f"{key}.sources", sources, list, "a list of source names")
                from mentionwatch.sources import registry

                for s in sources:
                    if s not in registry():
                        known = ", ".join(registry())
                        raise self.fail(f"{key}.sources", f"unknown source {s!r} (known: {known})")
                sources = tuple(sources)
            if name in names:
                raise self.fail(f"{key}.name", f"duplicate term name {name!r}")
            about = raw.get("about")
            if about is not None:
                self.check_type(f"{key}.about", about, str, "a description of the product")
                about = about.strip() or None
            not_about = raw.get("not_about", [])
            self.check_type(f"{key}.not_about", not_about, list, "a list of words or phrases")
            if not all(isinstance(w, str) and w.strip() for w in not_about):
                raise self.fail(f"{key}.not_about", "expected a list of non-empty strings")
            names.add(name)
            terms.append(Term(name=name, query=query, sources=sources, about=about,
                              not_about=tuple(w.strip() for w in not_about)))  # fmt: skip
        return tuple(terms)

    def sources(self, value: Any) -> dict[str, SourceSettings]:
        table = self.table("sources", value)
        result = {}
        for name, raw in table.items():
            from mentionwatch.sources import registry  # here: a config may set up none

            spec = registry().get(name)
            if spec is None:
                known = ", ".join(registry())
                raise self.fail(f"sources.{name}", f"unknown source (known: {known})")
            key = f"sources.{name}"
            raw = self.table(key, raw)
            options: dict[str, Option] = {
                "enabled": Option(bool),
                "base_url": Option(str),
                "interval": Option((str, int, float)),
                **spec.options,
            }
            self.only(key, raw, options)
            values: dict[str, Any] = {}
            problem = unset = None
            for opt_name, option in options.items():
                if opt_name not in raw:
                    values[opt_name] = option.default
                    continue
                opt_key = f"{key}.{opt_name}"
                self.check_type(opt_key, raw[opt_name], option.type, _describe(option),
                                option.secret)  # fmt: skip
                if isinstance(option.default, list) and not all(
                    isinstance(v, str) for v in raw[opt_name]
                ):
                    raise self.fail(opt_key, "expected a list of strings")
                value = raw[opt_name]
                if option.secret and isinstance(value, str) and value and not _VAR.search(value):
                    self.literal_secrets.append(opt_key)
                try:
                    values[opt_name] = self.expand(opt_key, raw[opt_name])
                except UnsetVariable as exc:
                    # Kept for later: only a command that uses this source needs the variable.
                    if problem is None:
                        problem, unset = str(exc), exc.variable
                    values[opt_name] = option.default
            base_url = values.pop("base_url") or spec.default_base_url
            if base_url is not None and not re.match(r"https?://", base_url):
                raise self.fail(f"{key}.base_url", f"expected an http(s) URL, got {base_url!r}")
            enabled = values.pop("enabled")
            interval = values.pop("interval")
            result[name] = SourceSettings(
                name=name,
                enabled=True if enabled is None else enabled,
                base_url=base_url.rstrip("/") if base_url else None,
                options=values,
                interval=None if interval is None else self.duration(f"{key}.interval", interval),
                problem=problem,
                unset=unset,
            )
        return result

    def poll(self, value: Any) -> PollSettings:
        table = self.table("poll", value)
        self.only("poll", table, _POLL_KEYS)
        for key, (expected, what) in _POLL_KEYS.items():
            if key in table:
                self.check_type(f"poll.{key}", table[key], expected, what)
        ignored = table.get("ignore_authors", [])
        if not all(isinstance(name, str) for name in ignored):
            raise self.fail("poll.ignore_authors", "expected a list of account names (strings)")
        values = {**table, "ignore_authors": tuple(ignored)}
        if "interval" in table:
            values["interval"] = self.duration("poll.interval", table["interval"])
        return PollSettings(**values)

    def duration(self, key: str, value: Any) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None

    def alerts(self, value: Any, term_names: list[str]) -> tuple[AlertRule, ...]:
        """[[alerts]] rules: every key checked, filters read by alerts.RULE_FILTERS."""
        from mentionwatch.alerts import RuleContext
        from mentionwatch.sources import registry

        if not isinstance(value, list):
            raise self.fail("alerts", "expected an array of [[alerts]] tables")
        context = RuleContext(terms=term_names, sources=list(registry()))
        rules: list[AlertRule] = []
        for i, raw in enumerate(value):
            rule = self.alert_rule(f"alerts[{i}]", self.table(f"alerts[{i}]", raw), context)
            if any(r.name == rule.name for r in rules):
                raise self.fail(f"alerts[{i}].name", f"a second rule named {rule.name!r}")
            rules.append(rule)
        return tuple(rules)

    def alert_rule(self, key: str, raw: dict[str, Any], context: Any) -> AlertRule:
        from mentionwatch.alerts import ALERT_EVENTS, COUNTED_FILTERS, RULE_FILTERS, AlertRule

        self.only(key, raw, {*_ALERT_KEYS, *RULE_FILTERS})
        problem = None
        for k, v in list(raw.items()):
            try:
                raw[k] = self.expand(f"{key}.{k}", v)
            except UnsetVariable as exc:
                # Kept for later, as for sources: only commands that deliver need it.
                problem = problem or str(exc)
                raw[k] = _without_unset(v)
        if "name" not in raw:
            raise self.fail(key, "every [[alerts]] rule needs a name")
        name = self.check_type(f"{key}.name", raw["name"], str, "a rule name")
        if not name.strip():
            raise self.fail(f"{key}.name", "expected a non-empty name")
        on = self.check_type(f"{key}.on", raw.get("on", "mention"), str, "an event name")
        if on not in ALERT_EVENTS:
            valid = ", ".join(ALERT_EVENTS)
            raise self.fail(f"{key}.on", f"unknown event {on!r} (expected one of: {valid})")
        for k in raw:
            if on not in _EVENT_KEYS.get(k, ALERT_EVENTS):
                only = " or ".join(f'on = "{e}"' for e in _EVENT_KEYS[k])
                raise self.fail(f"{key}.{k}", f"only for {only} rules (this one is on = {on!r})")
        filters = {}
        for filter_name, spec in RULE_FILTERS.items():
            if filter_name in raw:
                if on != "mention" and filter_name not in COUNTED_FILTERS:
                    raise self.fail(
                        f"{key}.{filter_name}",
                        f"not available for on = {on!r} rules: they count mentions by "
                        f"{', '.join(COUNTED_FILTERS)}",
                    )
                try:
                    filters[filter_name] = spec.read(raw[filter_name], context)
                except ValueError as exc:
                    raise self.fail(f"{key}.{filter_name}", str(exc)) from None
        to, command = self.alert_channels(key, raw)
        secret = raw.get("secret")
        if secret is not None:
            self.check_type(f"{key}.secret", secret, str, "a string")
        cap = raw.get("max_per_hour")
        if cap is not None and self.check_type(f"{key}.max_per_hour", cap, int, "a count") < 1:
            raise self.fail(f"{key}.max_per_hour", f"expected at least 1, got {cap}")
        group = self.check_type(f"{key}.group", raw.get("group", True), bool, "true or false")
        optional: dict[str, Any] = {}
        if "max_age" in raw:
            optional["max_age"] = self.duration(f"{key}.max_age", raw["max_age"])
        if on == "digest":
            optional["every"] = self.every(f"{key}.every", raw)
        if on == "spike":
            optional["spike"] = self.spike_settings(key, raw)
            optional["follow_up"] = self.check_type(
                f"{key}.follow_up", raw.get("follow_up", False), bool, "true or false"
            )
        return AlertRule(
            name=name, to=to, command=command, on=on, filters=filters, secret=secret or None,
            max_per_hour=cap, group=group, problem=problem, **optional,
        )  # fmt: skip

    def every(self, key: str, raw: dict[str, Any]) -> Any:
        from mentionwatch.alerts import Every

        if "every" not in raw:
            raise self.fail(key, f"a digest rule needs a schedule: {Every.HELP}")
        try:
            return Every.parse(raw["every"])
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None

    def spike_settings(self, key: str, raw: dict[str, Any]) -> dict[str, float]:
        """A spike rule's own thresholds (spikes.SpikeSettings' defaults otherwise)."""
        settings: dict[str, float] = {}
        for name, (expected, what, low, high) in _SPIKE_KEYS.items():
            if name in raw:
                value = self.check_type(f"{key}.{name}", raw[name], expected, what)
                if not low <= value <= high:
                    raise self.fail(f"{key}.{name}", f"expected {what} from {low:g} to {high:g}, "
                                    f"got {value!r}")  # fmt: skip
                settings[name] = value
        return settings

    def alert_channels(self, key: str, raw: dict[str, Any]) -> tuple[tuple[str, ...], ...]:
        """A rule's `to` URLs and its `command`; at least one of them."""
        from mentionwatch.alerts import command_argv, url_problem

        to = raw.get("to", [])
        to = [to] if isinstance(to, str) else to
        if not isinstance(to, list) or not all(isinstance(u, str) for u in to):
            raise self.fail(f"{key}.to", "expected a list of channel URLs")
        for url in to:
            problem = url_problem(url)
            if problem:
                raise self.fail(f"{key}.to", problem)
        command: tuple[str, ...] = ()
        if "command" in raw:
            value = raw["command"]
            try:
                if not isinstance(value, str | list) or not all(isinstance(a, str) for a in value):
                    raise ValueError("expected a program and its arguments (a list of strings)")
                command = command_argv(value)
            except ValueError as exc:
                raise self.fail(f"{key}.command", str(exc)) from None
        if not to and not command:
            raise self.fail(f"{key}.to", "a rule needs somewhere to send: to = [URL, …] or command")
        return tuple(to), command


def _without_unset(value: Any) -> Any:
    """A value with its unset ${VAR}s left empty, so the rest of it can still be checked."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: os.environ.get(m.group(1), ""), value)
    if isinstance(value, list):
        return [_without_unset(v) for v in value]
    return value


# Keys of an [[alerts]] rule besides its filters (alerts.RULE_FILTERS).
_ALERT_KEYS = (
    "name", "on", "to", "command", "secret", "max_age", "max_per_hour", "group",
    "every", "min_count", "min_ratio", "p_value", "follow_up",
)  # fmt: skip
# The keys only some events take (the others take every event).
_EVENT_KEYS = {
    "max_age": ("mention",),
    "group": ("mention",),
    "every": ("digest",),
    "min_count": ("spike",),
    "min_ratio": ("spike",),
    "p_value": ("spike",),
    "follow_up": ("spike",),
}
# A spike rule's thresholds: type, what it is, and the range that makes sense.
_SPIKE_KEYS: dict[str, tuple[Any, str, float, float]] = {
    "min_count": (int, "a count of mentions", 1, 100000),
    "min_ratio": ((int, float), "a ratio to the expected count", 1, 1000),
    "p_value": ((int, float), "a probability", 1e-12, 0.05),
}


def config_error(config: Config, key: str, reason: str) -> ConfigError:
    """A ConfigError naming the file, line and key, for checks made after loading."""
    if config.path is None:
        return ConfigError(f"{key}: {reason}")
    try:
        text = config.path.read_text(encoding="utf-8")
    except OSError:
        text = ""
    return _Parser(config.path, text).fail(key, reason)


def _describe(option: Option) -> str:
    names = {bool: "true or false", str: "a string", int: "an integer", list: "a list"}
    types = option.type if isinstance(option.type, tuple) else (option.type,)
    return " or ".join(names.get(t, t.__name__) for t in types)

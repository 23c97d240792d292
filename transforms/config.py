"""The one configuration file, loaded into typed, validated settings (durations in milliseconds)."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .content import cross_check as content_cross_check, parse_experiments, parse_slots
from .thresholds import cross_check as thresholds_cross_check, parse_thresholds
from .features import feature_names
from .segments import RuleError, compile_rules
from .triggers import compile_triggers

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config" / "default.yaml"
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


class ConfigError(ValueError):
    """A configuration that cannot be used; `problems` lists each bad key with the reason."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def parse_duration(value: Any) -> int:
    """'30m' -> 1_800_000 ms; a bare number means seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s or 5m, got {value!r}")
    if isinstance(value, (int, float)):
        return int(round(value * 1000))
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return int(round(float(m.group(1)) * _UNITS[m.group(2)]))
    raise ValueError(f"expected a duration like 200ms, 30s, 5m, 1h or 7d, got {value!r}")


def _dur(default: str, minimum: int = 0, doc: str = "") -> Any:
    return field(default=parse_duration(default), metadata={"kind": "duration", "min": minimum, "doc": doc})


def _int(default: int, minimum: int = 0, doc: str = "") -> Any:
    return field(default=default, metadata={"kind": "int", "min": minimum, "doc": doc})


def _num(default: float, lo: float, hi: float, doc: str = "") -> Any:
    return field(default=default, metadata={"kind": "float", "min": lo, "max": hi, "doc": doc})


def _choice(default: str, *choices: str) -> Any:
    return field(default=default, metadata={"kind": "choice", "choices": choices})


def _str(default: str | None, optional: bool = False) -> Any:
    return field(default=default, metadata={"kind": "str", "optional": optional})


@dataclass(frozen=True)
class EventTime:
    allowed_lateness: int = _dur("2m")
    watermark_idleness: int = _dur("30s", 1)
    max_pending: int = _int(5000, 1)
    max_future_skew: int = _dur("1d", 1)
    outlier_tolerance: int = _int(3, 0)
    outlier_window: int = _int(256, 2)


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = _int(65536, 64)
    max_id_length: int = _int(128, 8)
    max_label_length: int = _int(128, 8)
    max_text_length: int = _int(8192, 8)


@dataclass(frozen=True)
class State:
    ttl: int = _dur("30d", 0)


@dataclass(frozen=True)
class Sessions:
    gap: int = _dur("30m", 1)
    max_length: int = _dur("4h", 1)


@dataclass(frozen=True)
class Windows:
    sliding: tuple[int, ...] = field(default=(300_000, 3_600_000, 86_400_000), metadata={"kind": "durations"})
    max_events: int = _int(512, 1)


@dataclass(frozen=True)
class Profile:
    affinity_half_life: int = _dur("7d", 1)
    recent_sessions: int = _int(10, 2)
    max_categories: int = _int(64, 2)


@dataclass(frozen=True)
class Shift:
    short_half_life_events: float = _num(10, 1, 1e6)
    long_half_life_events: float = _num(150, 1, 1e6)
    min_events: int = _int(10, 1)
    threshold: float = _num(0.15, 0.0, 1.0)
    cooldown_events: int = _int(25, 0)
    persist_events: int = _int(2, 1)
    confirm_across_sessions: bool = field(default=True, metadata={"kind": "bool"})


@dataclass(frozen=True)
class Rule:
    name: str
    when: str


@dataclass(frozen=True)
class TriggerRule:
    name: str
    when: str | None = None
    after: str | None = None
    unless: str | None = None
    wait: int = 0
    once_per_session: bool = False


@dataclass(frozen=True)
class Triggers:
    keep: int = _int(10, 1)
    rules: tuple[TriggerRule, ...] = field(default=(), metadata={"kind": "triggers"})


@dataclass(frozen=True)
class Content:
    epoch: int = _dur("1m", 1000)
    attribution_window: int = _dur("30m", 1000)
    purchase_reward: float = _num(5.0, 0.0, 1e6)
    delay_epochs: int = _int(0, 0)
    max_per_category: int = _int(0, 0)
    explore_top: int = _int(0, 0)
    slots: tuple = field(default=(), metadata={"kind": "slots"})
    experiments: tuple = field(default=(), metadata={"kind": "experiments"})
    thresholds: tuple = field(default=(), metadata={"kind": "thresholds"})

    def delay(self, allowed_lateness: int) -> int:
        """Epochs between an event's and the snapshot its choice uses (0 configured: enough for the lateness)."""
        return self.delay_epochs or -(-allowed_lateness // self.epoch) + 1


@dataclass(frozen=True)
class Segments:
    default: str = _str("general")
    rules: tuple[Rule, ...] = field(default=(), metadata={"kind": "rules"})


@dataclass(frozen=True)
class Batching:
    micro_batch_size: int = _int(256, 1)
    flush_interval: int = _dur("200ms", 1)


@dataclass(frozen=True)
class Models:
    dir: str | None = _str(None, optional=True)
    reload_interval: int = _dur("10s", 1)
    intra_op_threads: int = _int(1, 1)


@dataclass(frozen=True)
class Redis:
    url: str = _str("redis://127.0.0.1:6379/0")
    key_prefix: str = _str("ss:d:")
    shadow_prefix: str = _str("ss:shadow:")
    ttl: int = _dur("7d", 1000)
    in_flight_batches: int = _int(1, 0)
    retry_for: int = _dur("5m", 0)
    password_env: str | None = _str(None, optional=True)
    password_file: str | None = _str(None, optional=True)
    ca_file: str | None = _str(None, optional=True)


@dataclass(frozen=True)
class Kafka:
    bootstrap: str = _str("127.0.0.1:9092")
    events_topic: str = _str("interactions")
    privacy_topic: str = _str("privacy-requests")
    decisions_topic: str = _str("decisions")
    dead_letter_topic: str = _str("dead-letters")
    late_topic: str = _str("late-events")
    content_actions_topic: str = _str("content-actions")
    group_id: str = _str("shiftstream")
    schema_registry_url: str = _str("memory://")
    writer_schemas: tuple[str, ...] = field(default=(), metadata={"kind": "paths"})
    security_protocol: str = _choice("PLAINTEXT", "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
    sasl_mechanism: str | None = _str(None, optional=True)
    sasl_username: str | None = _str(None, optional=True)
    sasl_password_env: str | None = _str(None, optional=True)
    sasl_password_file: str | None = _str(None, optional=True)
    ssl_ca_file: str | None = _str(None, optional=True)


@dataclass(frozen=True)
class Engine:
    parallelism: int = _int(1, 1)
    checkpoint_interval: int = _dur("30s", 100)
    checkpoint_mode: str = _choice("exactly_once", "exactly_once", "at_least_once")
    execution_mode: str = _choice("thread", "thread", "process")
    watermark_interval: int = _dur("50ms", 1)
    buffer_timeout: int = _dur("10ms", 0)
    checkpoint_dir: str = _str(".shiftstream/checkpoints")
    checkpoints_retained: int = _int(3, 1)
    state_cache_users: int = _int(100_000, 0)
    bind_address: str = _str("127.0.0.1")
    gc_freeze_interval: int = _dur("100ms", 0)
    checkpoint_fork: bool = field(default=True, metadata={"kind": "bool"})


@dataclass(frozen=True)
class Privacy:
    consent_mode: str = _choice("opt_out", "opt_out", "opt_in")
    key_env: str = _str("SHIFTSTREAM_PSEUDONYM_KEY")
    key_file: str | None = _str(None, optional=True)
    require_key: bool = field(default=False, metadata={"kind": "bool"})


@dataclass(frozen=True)
class Serve:
    host: str = _str("127.0.0.1")
    port: int = _int(8080, 1)
    redis_timeout: int = _dur("50ms", 1)
    api_key_env: str = _str("SHIFTSTREAM_API_KEY")
    max_body: int = _int(1_048_576, 1)
    max_events: int = _int(1000, 1)
    idempotent_producer: bool = field(default=True, metadata={"kind": "bool"})
    access_log: bool = field(default=False, metadata={"kind": "bool"})


@dataclass(frozen=True)
class Metrics:
    host: str = _str("127.0.0.1")
    port: int = _int(0, 0)
    publish_interval: int = _dur("1s", 0)
    stats_key: str = _str("ss:stats:job")


@dataclass(frozen=True)
class Config:
    """All settings; sections mirror the YAML file's top-level keys."""

    version: int = 1
    event_time: EventTime = EventTime()
    limits: Limits = Limits()
    state: State = State()
    sessions: Sessions = Sessions()
    windows: Windows = Windows()
    profile: Profile = Profile()
    shift: Shift = Shift()
    segments: Segments = Segments()
    triggers: Triggers = Triggers()
    content: Content = Content()
    batching: Batching = Batching()
    models: Models = Models()
    redis: Redis = Redis()
    kafka: Kafka = Kafka()
    engine: Engine = Engine()
    privacy: Privacy = Privacy()
    serve: Serve = Serve()
    metrics: Metrics = Metrics()

    def replace(self, **changes: Any) -> "Config":
        """A copy with whole sections or dotted keys changed: `cfg.replace(**{"redis.url": "redis://..."})`."""
        out = self
        for key, value in changes.items():
            if "." in key:
                section, name = key.split(".", 1)
                out = dataclasses.replace(out, **{section: dataclasses.replace(getattr(out, section), **{name: value})})
            else:
                out = dataclasses.replace(out, **{key: value})
        return out


def _convert(path: str, f: dataclasses.Field, value: Any, problems: list[str]) -> Any:
    meta = f.metadata
    kind = meta.get("kind", "str")
    try:
        if kind == "duration":
            v = parse_duration(value)
            if v < meta.get("min", 0):
                raise ValueError(f"must be at least {meta['min']} ms, got {value!r}")
            return v
        if kind == "durations":
            if not isinstance(value, list) or not value:
                raise ValueError(f"expected a non-empty list of durations, got {value!r}")
            vs = tuple(sorted(parse_duration(x) for x in value))
            if vs[0] <= 0:
                raise ValueError("window widths must be positive")
            return vs
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"expected an integer, got {value!r}")
            if value < meta.get("min", 0):
                raise ValueError(f"must be at least {meta['min']}, got {value}")
            return value
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"expected a number, got {value!r}")
            if not meta["min"] <= value <= meta["max"]:
                raise ValueError(f"must be between {meta['min']} and {meta['max']}, got {value}")
            return float(value)
        if kind == "paths":
            if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
                raise ValueError(f"expected a list of file paths, got {value!r}")
            return tuple(value)
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
            return value
        if kind == "choice":
            if value not in meta["choices"]:
                raise ValueError(f"must be one of {', '.join(meta['choices'])}, got {value!r}")
            return value
        if kind == "rules":
            if not isinstance(value, list):
                raise ValueError(f"expected a list of {{name, when}} rules, got {value!r}")
            rules = []
            for i, r in enumerate(value):
                if not isinstance(r, dict) or set(r) != {"name", "when"}:
                    raise ValueError(f"rule {i} must have exactly the keys name and when, got {r!r}")
                rules.append(Rule(str(r["name"]), str(r["when"])))
            return tuple(rules)
        if kind == "triggers":
            return _trigger_rules(value)
        if kind == "slots":
            return parse_slots(value)
        if kind == "experiments":
            return parse_experiments(value)
        if kind == "thresholds":
            return parse_thresholds(value, parse_duration)
        if value is None and meta.get("optional"):
            return None
        if not isinstance(value, str) or not value:
            raise ValueError(f"expected a non-empty string, got {value!r}")
        return value
    except ValueError as exc:
        problems.append(f"{path}: {exc}")
        return f.default


_TRIGGER_KEYS = ("name", "when", "after", "unless", "wait", "once_per_session")


def _trigger_rules(value: Any) -> tuple:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of triggers ({{name, when}} or {{name, after, wait, unless}}), got {value!r}")
    rules = []
    for i, r in enumerate(value):
        if not isinstance(r, dict) or "name" not in r:
            raise ValueError(f"trigger {i} must be a mapping with a name, got {r!r}")
        unknown = set(r) - set(_TRIGGER_KEYS)
        if unknown:
            raise ValueError(f"trigger {r['name']!r}: unknown key {sorted(unknown)[0]!r} (known: "
                             f"{', '.join(_TRIGGER_KEYS)})")
        try:
            wait = parse_duration(r["wait"]) if r.get("wait") is not None else 0
        except ValueError as exc:
            raise ValueError(f"trigger {r['name']!r}: wait: {exc}") from None
        once = r.get("once_per_session", False)
        if not isinstance(once, bool):
            raise ValueError(f"trigger {r['name']!r}: once_per_session must be true or false, got {once!r}")
        texts = {k: None if r.get(k) is None else str(r[k]) for k in ("when", "after", "unless")}
        rules.append(TriggerRule(str(r["name"]), texts["when"], texts["after"], texts["unless"], wait, once))
    return tuple(rules)


def _section(cls: type, path: str, data: Any, problems: list[str]) -> Any:
    if not isinstance(data, dict):
        problems.append(f"{path}: expected a mapping of keys, got {data!r}")
        return cls()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        if key not in fields:
            problems.append(f"{path}.{key}: unknown key (known: {', '.join(fields)})")
            continue
        values[key] = _convert(f"{path}.{key}", fields[key], value, problems)
    return cls(**values)


def _embedded_defaults() -> dict:
    return yaml.safe_load(DEFAULT_PATH.read_text())


def config_from_dict(data: dict, source: str = "config", defaults: bool = True) -> Config:
    """Typed settings from a parsed YAML mapping; keys it leaves out keep the embedded default file's values."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError([f"the file must hold a mapping of sections, got {type(data).__name__}"], source)
    if defaults:
        merged = _embedded_defaults()
        for key, value in data.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        data = merged
    sections = {f.name: f for f in dataclasses.fields(Config)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in sections:
            problems.append(f"{key}: unknown section (known: {', '.join(sections)})")
        elif key == "version":
            if value != 1:
                problems.append(f"version: only version 1 is understood, got {value!r}")
        else:
            values[key] = _section(sections[key].type if isinstance(sections[key].type, type)
                                   else type(sections[key].default), key, value, problems)
    cfg = Config(**values)
    problems += _cross_checks(cfg)
    if problems:
        raise ConfigError(problems, source)
    return cfg


def _cross_checks(cfg: Config) -> list[str]:
    problems = []
    if cfg.state.ttl and cfg.state.ttl <= cfg.sessions.gap:
        problems.append("state.ttl: must be longer than sessions.gap (or 0: never expire)")
    if cfg.sessions.max_length <= cfg.sessions.gap:
        problems.append("sessions.max_length: must be longer than sessions.gap")
    if cfg.event_time.outlier_window <= cfg.event_time.outlier_tolerance:
        problems.append("event_time.outlier_window: must be larger than event_time.outlier_tolerance")
    if cfg.shift.long_half_life_events <= cfg.shift.short_half_life_events:
        problems.append("shift.long_half_life_events: must be longer than shift.short_half_life_events")
    if not cfg.redis.url.startswith(("redis://", "rediss://")):
        problems.append(f"redis.url: must start with redis:// or rediss:// (TLS), got {redact_url(cfg.redis.url)!r}")
    if not cfg.kafka.schema_registry_url.startswith(("memory://", "file://", "http://", "https://")):
        problems.append("kafka.schema_registry_url: must start with memory://, file://, http:// or https://")
    k = cfg.kafka
    if k.security_protocol.startswith("SASL_"):
        if k.sasl_mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            problems.append(f"kafka.sasl_mechanism: {k.security_protocol} needs PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
        if not k.sasl_username:
            problems.append(f"kafka.sasl_username: {k.security_protocol} needs a user")
        if not (k.sasl_password_env or k.sasl_password_file):
            problems.append(f"kafka.sasl_password_env: {k.security_protocol} needs a password source "
                            "(sasl_password_env or sasl_password_file; never the password itself)")
    for path in cfg.kafka.writer_schemas:
        try:
            schema = yaml.safe_load(Path(path).read_text())  # JSON is YAML
            if not isinstance(schema, dict) or schema.get("type") != "record":
                raise ValueError("not an Avro record schema")
        except (OSError, ValueError, yaml.YAMLError) as exc:
            problems.append(f"kafka.writer_schemas: {path}: {str(exc).splitlines()[0]}")
    try:
        compile_rules(cfg.segments.rules, feature_names(cfg))
    except RuleError as exc:
        problems.append(f"segments.rules: {exc}")
    problems += content_cross_check(cfg.content.slots, cfg.content.experiments, feature_names(cfg))
    problems += thresholds_cross_check(cfg.content.thresholds, cfg.content.slots, cfg.content.epoch)
    if cfg.content.explore_top and not any(v.category for s in cfg.content.slots for v in s.variants):
        problems.append("content.explore_top: needs slots whose variants have categories (the catalogue it "
                        "explores)")
    if cfg.content.explore_top > 4:
        problems.append(f"content.explore_top: at most 4 of top_categories' 5 places, got {cfg.content.explore_top}")
    try:
        compile_triggers(cfg.triggers.rules)
    except RuleError as exc:
        problems.append(f"triggers.rules: {exc}")
    return problems


def redact_url(url: str) -> str:
    """A URL fit for logs: the password (everything between the user's ':' and the last '@' of the authority,
    whatever characters it holds) replaced by ***."""
    head, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, hostpart = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{head}://{user}{':***' if colon else ''}@{hostpart}"


def load_config(path: str | Path | None = None) -> Config:
    """Settings from a YAML file (the embedded default when no path is given)."""
    p = Path(path) if path else DEFAULT_PATH
    try:
        data = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ConfigError([f"no such file: {p}"], str(p)) from None
    except IsADirectoryError:
        raise ConfigError(["is a directory, not a YAML file"], str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot be read: {exc}"], str(p)) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], str(p)) from None
    return config_from_dict(data or {}, str(p), defaults=p != DEFAULT_PATH)

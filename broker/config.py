"""Runtime settings for every ketenbus process, from environment variables and an optional file.

Precedence, highest first: keyword arguments (code and tests), ``KETENBUS_*`` environment
variables, the config file (YAML or TOML, given to :func:`load_settings` or named by
``KETENBUS_CONFIG``), then the defaults below. Every problem is reported as a :class:`ConfigError`
that names the environment variable *and* the file key, because operators set either one.

Transport security (TLS, SASL) is checked here as a whole, so that a half-configured client
fails at start-up with a message instead of silently falling back to plaintext.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "KETENBUS_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

_SSL_PROTOCOLS = ("SSL", "SASL_SSL")
_SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
_SSL_FIELDS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_keyfile_password")
_SASL_FIELDS = ("sasl_mechanism", "sasl_username", "sasl_password")
_FILE_FIELDS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
_PATH_FIELDS = ("state_dir", *_FILE_FIELDS)
_SECRET_FIELDS = ("sasl_password", "ssl_keyfile_password")
_HOST_PORT = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]+$")


def env_name(setting: str) -> str:
    """The environment variable that sets ``setting``."""
    return ENV_PREFIX + setting.upper()


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one setting."""

    setting: str
    message: str

    def __str__(self) -> str:
        return f"{env_name(self.setting)} ({self.setting}): {self.message}"


class ConfigError(Exception):
    """Invalid configuration. Each line names the setting as env var and file key.

    Deliberately not a ``ValueError``: pydantic would wrap a ``ValueError`` raised in a validator
    into its own error and drop our wording.
    """

    def __init__(
        self, problems: Sequence[Problem] | str, *, config_file: Path | None = None
    ) -> None:
        self.problems: tuple[Problem, ...] = () if isinstance(problems, str) else tuple(problems)
        self.config_file = config_file
        where = f" (config file {config_file}; environment variables override it)"
        head = "invalid ketenbus configuration" + (where if config_file else "")
        if isinstance(problems, str):
            text = f"{head}: {problems}"
        elif len(self.problems) == 1:
            text = f"{head}: {self.problems[0]}"
        else:
            text = head + ":\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(text)


# The file given to load_settings() for the Settings() call it makes; None means "ask the env".
_config_file_var: ContextVar[Path | None] = ContextVar("ketenbus_config_file", default=None)


def _active_config_file() -> Path | None:
    explicit = _config_file_var.get()
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV, "").strip()
    return Path(from_env) if from_env else None


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a flat YAML or TOML mapping of setting name to value.

    Relative paths inside the file are taken relative to the file, as operators expect when
    they ship a config directory with its certificates.
    """
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml"):
        raise ConfigError(
            f"{path}: unsupported file type; use .yaml, .yml or .toml",
            config_file=path,
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        data: Any = tomllib.loads(text) if suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"{path} is not valid {suffix[1:].upper()}: {first_line}",
            config_file=path,
        ) from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{path} must hold a mapping of setting names to values",
            config_file=path,
        )
    values = {str(k): v for k, v in data.items()}
    for key in _PATH_FIELDS:
        raw = values.get(key)
        if isinstance(raw, str) and raw and not Path(raw).is_absolute():
            values[key] = str(path.parent / raw)
    return values


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Settings source for the config file; sits below the environment in precedence."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Unused: __call__ returns the whole mapping at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = _active_config_file()
        return read_config_file(path) if path is not None else {}


class Settings(BaseSettings):
    """Everything a ketenbus process needs to reach Kafka and keep its runtime state."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        hide_input_in_errors=True,
    )

    bootstrap_servers: str | None = None
    """``host:port[,host:port...]`` of the Kafka cluster; None starts the embedded broker."""

    state_dir: Path = Path(".ketenbus")
    """Runtime keys, secrets and logs. Never committed (it is in .gitignore)."""

    registry_file: Path | None = None
    """The party registry (YAML). Default: ``<state_dir>/registry.yaml``."""

    keys_dir: Path | None = None
    """Where this machine's private key files are. Default: ``<state_dir>/keys``."""

    registry_anchor_file: Path | None = None
    """The registry's trust anchor: the administrators' public keys and how many must sign
    (docs/trust.md §2.1). A component loads only a registry they signed. Pin it out of band,
    never beside the registry in the same delivery. Default:
    ``<state_dir>/registry-anchor.yaml``."""

    registry_poll_seconds: float = Field(default=2.0, ge=0.05, le=3600.0)
    """How often a running component looks for a new signed registry (a rotation, a revocation):
    a revoked key is refused by every running component at most this long (plus the time to
    read the file) after the signed registry is in place (docs/onboarding.md)."""

    session_timeout_ms: int | None = Field(default=None, ge=1000, le=300000)
    """Consumer-group session timeout; a crashed member's partitions move after this long. Unset:
    chosen by the broker's kind (``broker/kafka/group.py``): 2,000 ms on Tansu (the embedded
    broker), 6,000 ms on Apache Kafka (its default ``group.min.session.timeout.ms``)."""

    fetch_max_wait_ms: int = Field(default=500, ge=10, le=5000)
    """How long a consumer's fetch may wait for records (FastStream's and Kafka's default, 500 ms).
    The embedded broker answers a fetch only when this wait is over, even when records arrive
    meanwhile, so on it the wait is latency at every hop; a shorter wait costs idle fetches
    (CPU), which adds up with many adapters in one process. Apache Kafka answers as soon as
    records arrive, so there the default costs no latency."""

    router_fetch_max_wait_ms: int = Field(default=20, ge=5, le=5000)
    """The fetch wait of the router's own consumer group (the routed topics). Short by default:
    on the embedded broker a fetch is answered only when its wait is over, so the wait is the
    router's latency (issue 19: p99 271 ms at 500 msgs/s with 500 ms, the goal is 50 ms); the
    price is one idle fetch per wait of one consumer, not of every adapter."""

    router_linger_ms: int = Field(default=0, ge=0, le=1000)
    """How long the router's producer holds a record to fill a batch (aiokafka ``linger_ms``; the
    other components keep 5 ms). The router sends a fetched batch's records all at once and then
    waits for their acknowledgements, so its records are batched already and a linger only
    delays that wait: 12-13 ms against 7-8 ms for 100 records on the embedded broker (issue 19:
    p99 at 500 msgs/s)."""

    router_full_validation: bool = False
    """Let the router re-validate every message with fhir.resources (about 2 ms each, 45 % of its
    CPU). Off by default: adapters validate where messages are made, the router checks the
    messaging rules and everything it routes on, and minimisation keeps only allow-listed
    elements. Turn it on for a party whose adapter you do not run yourself."""

    routers: int = Field(default=1, ge=1, le=16)
    """How many router instances ``ketenbus up`` runs side by side in the router's consumer group.
    Above one, each instance gets a signing key and an audit chain of its own in the registry
    (``router-1``, ``router-2`` ...), because two routers on one chain fork it."""

    audit_checkpoint_seconds: float = Field(default=60.0, ge=0.1, le=86400.0)
    """How often an audit writer publishes its chain's signed head on ``audit-checkpoint`` (and
    always at a clean stop): the longest stretch of a cut-off tail a checkpoint cannot show."""

    escalation_regional_seconds: float = Field(default=5 * 86400.0, gt=0, le=366 * 86400.0)
    """How long an escalation may stand at the regional step unanswered by a resolution before
    the router's ladder moves it to the national coordination point (default five days; an
    escalation waiting for information the step asked for does not move)."""

    escalation_regional_steps: dict[str, str] = Field(default_factory=dict)
    """The escalation step of each Levensloop region, ``{region: party id}`` (the region's ZVH or
    coordinating provider); a region not named here escalates to its coordinating provider."""

    consent_snapshot_seconds: float = Field(default=600.0, ge=0.0)
    """How often the router instance that holds partition 0 of ``in.consent`` writes a snapshot
    of its consent view (when the consent log moved since its last one); 0: never. A starting
    router loads the newest valid snapshot whatever this says (docs/consent-snapshot.md)."""

    escalation_tick_seconds: float = Field(default=60.0, ge=0.05, le=3600.0)
    """How often the router's ladder and watchdogs look for what is due."""

    watchdog_undecided_seconds: float = Field(default=28 * 86400.0, gt=0)
    """A referral routed this long ago without an inclusion decision raises a ``no-decision``
    escalation (the router's watchdog; closed when the decision arrives)."""

    watchdog_no_care_start_seconds: float = Field(default=14 * 86400.0, gt=0)
    """An inclusion this long ago without a start of care raises ``no-care-start``."""

    watchdog_no_placement_seconds: float = Field(default=7 * 86400.0, gt=0)
    """A secure bed requested this long ago (a scale-up without a location) without a placement
    (a transition naming its location) raises ``no-bed`` at that security level."""

    capacity_cadence_seconds: float = Field(default=3600.0, gt=0)
    """How often a provider reports its secure-bed capacity: a report older than this is marked
    stale on the dashboard, with its date and time (the capacity watchdog)."""

    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Serve this process's Prometheus metrics on ``127.0.0.1:<port>`` (0: any free port). Unset:
    no endpoint. ``ketenbus up`` takes ``--metrics-port`` instead."""

    metrics_host: str = Field(default="127.0.0.1", pattern=r"^[0-9a-fA-F.:]{2,45}$")
    """The address the metrics endpoint binds to. Loopback by default; a container sets
    ``0.0.0.0`` so Prometheus on the compose network can scrape it (the port is not published
    on the host)."""

    otlp_endpoint: str | None = Field(
        default=None, pattern=r"^https?://[^\s]{1,500}$", max_length=507
    )
    """Export OpenTelemetry spans over OTLP/HTTP to this traces URL (e.g.
    ``http://127.0.0.1:4318/v1/traces``). Unset: the standard ``OTEL_EXPORTER_OTLP_*`` variables
    decide; none set: no spans are made (docs/operations.md, "Traces")."""
    zvh_http_auth: Literal["token", "none"] = "token"
    """How the ZVH HTTP intake knows who posts: ``token`` (default), the party's bearer token,
    checked against the SHA-256 digests in its registry entry at every request
    (adapters/zvh/auth.py); ``none`` only for a loopback-bound intake in a test bed
    (``ketenbus adapter zvh`` refuses to bind another address without it)."""

    zvh_http_tls_certfile: Path | None = None
    """Serve the ZVH HTTP intake over HTTPS with this certificate (PEM) and
    ``zvh_http_tls_keyfile``; unset: plain HTTP (loopback)."""

    zvh_http_tls_keyfile: Path | None = None
    """The private key of ``zvh_http_tls_certfile`` (PEM)."""

    zvh_http_tls_client_ca: Path | None = None
    """With HTTPS: accept client certificates signed by this CA (PEM) as a party's credential
    beside its token; the certificate names the party (common name or DNS alternative name,
    adapters/zvh/tls.py)."""

    max_input_bytes: int = Field(default=5_000_000, ge=1024, le=1_000_000_000)
    """Largest inbox file or HTTP body an adapter reads. A bigger one is refused (``too-large``,
    HTTP 413) before it is read: it never enters memory (docs/adapters/limits.md)."""

    max_json_depth: int = Field(default=32, ge=4, le=512)
    """Deepest nesting of objects and arrays in outside JSON, checked before it is parsed
    (``too-deep``): a ZVH document is at most 4 levels deep."""

    max_csv_cell_bytes: int = Field(default=65_536, ge=256, le=10_000_000)
    """Longest cell of an inbox CSV (``cell-too-large``)."""

    max_csv_row_bytes: int = Field(default=262_144, ge=1024, le=50_000_000)
    """Longest line of an inbox CSV (``row-too-large``), checked before the CSV is parsed."""

    max_batch_items: int = Field(default=10_000, ge=1, le=1_000_000)
    """Most documents in one JSON array file or rows in one CSV file (``too-many-items``)."""

    max_xml_bytes: int = Field(default=5_000_000, ge=1024, le=1_000_000_000)
    """Largest XML answer file a payer adapter reads (``too-large``)."""

    max_dead_letter_bytes: int = Field(default=512_000, ge=1024, le=10_000_000)
    """Largest refused input carried whole on ``dead-letter`` (Kafka's record limit is about
    1 MB). A bigger one is kept sealed in the adapter's own ``parked/`` folder and the dead
    letter carries its reference and SHA-256 instead."""

    inbox_max_attempts: int = Field(default=3, ge=1, le=100)
    """How often an inbox file that fails for reasons of its own (not the broker's) is tried
    before it is quarantined in ``failed/`` (reason ``quarantined``)."""

    retention_days: dict[str, float] = Field(default_factory=dict)
    """Retention terms in days that replace the topic catalogue's (``docs/retention.md``), by topic
    name or prefix pattern: ``{"out.*": 60, "audit": 3650}``; a negative number keeps for ever.
    From the environment as JSON: ``KETENBUS_RETENTION_DAYS='{"out.*": 60}'``. Applied by
    ``ketenbus topics`` (topic configs) and by ``ketenbus prune`` (ketenbus's own files)."""

    client_id_prefix: str = "ketenbus"
    """Prefix of every Kafka client id, so broker logs and quotas can tell our clients apart."""

    security_protocol: SecurityProtocol = "PLAINTEXT"
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_keyfile_password: SecretStr | None = None
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            # `from None`: the pydantic error would repeat raw input values, secrets included.
            raise _from_validation_error(exc, _active_config_file()) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ConfigFileSource(settings_cls))

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator(
        "bootstrap_servers",
        "sasl_username",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
        "sasl_mechanism",
        "sasl_password",
        "ssl_keyfile_password",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _intake_tls_whole(self) -> Settings:
        """HTTPS needs its certificate and key together, and client certificates need HTTPS."""
        cert, key = self.zvh_http_tls_certfile, self.zvh_http_tls_keyfile
        if (cert is None) != (key is None):
            raise ValueError("zvh_http_tls_certfile and zvh_http_tls_keyfile go together")
        if self.zvh_http_tls_client_ca is not None and cert is None:
            raise ValueError("zvh_http_tls_client_ca needs zvh_http_tls_certfile (HTTPS)")
        return self

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str | None) -> str | None:
        return None if value is None else check_bootstrap(value)

    @field_validator("retention_days")
    @classmethod
    def _check_retention(cls, value: dict[str, float]) -> dict[str, float]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9._-]+\*?", name):
                raise ValueError(f"{name!r} is not a topic name or a prefix ending in '*'")
        return value

    @field_validator("client_id_prefix")
    @classmethod
    def _check_client_id(cls, value: str) -> str:
        if not _CLIENT_ID.match(value):
            raise ValueError("use only letters, digits, '.', '_' and '-'")
        return value

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        problems = security_problems(self)
        if problems:
            raise ConfigError(problems, config_file=_active_config_file())
        return self

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in _SSL_PROTOCOLS

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in _SASL_PROTOCOLS

    def with_bootstrap(self, bootstrap: str) -> Settings:
        """A copy that talks to ``bootstrap``, e.g. the embedded broker once it has a port."""
        return self.model_copy(update={"bootstrap_servers": check_bootstrap(bootstrap)})


def check_bootstrap(value: str) -> str:
    """Normalise ``host:port[,host:port]``; raise ``ValueError`` saying what is wrong."""
    entries = [e.strip() for e in value.split(",") if e.strip()]
    if not entries:
        raise ValueError("empty; give host:port, or unset it to use the embedded broker")
    for entry in entries:
        match = _HOST_PORT.match(entry)
        if match is None or not 0 < int(match.group(1)) < 65536:
            raise ValueError(
                f"{entry!r} is not host:port (e.g. kafka:9092; no scheme such as tcp://)"
            )
    return ",".join(entries)


def security_problems(settings: Settings) -> list[Problem]:
    """Cross-setting checks of TLS and SASL; empty when the combination is usable."""
    s = settings
    problems: list[Problem] = []
    proto = s.security_protocol
    if proto != "PLAINTEXT" and s.bootstrap_servers is None:
        problems.append(
            Problem(
                "security_protocol",
                f"{proto} needs an external Kafka: the embedded broker speaks PLAINTEXT only. "
                f"Set {env_name('bootstrap_servers')}=host:port or use PLAINTEXT",
            )
        )
    if s.uses_ssl:
        if s.ssl_cafile is None:
            problems.append(
                Problem(
                    "ssl_cafile",
                    f"required with security_protocol {proto}: the CA "
                    "certificate (PEM) that signed the Kafka brokers' certificates",
                )
            )
        if s.ssl_keyfile is not None and s.ssl_certfile is None:
            problems.append(
                Problem(
                    "ssl_certfile",
                    "required when ssl_keyfile is set (the client "
                    "certificate that goes with the key)",
                )
            )
        if s.ssl_keyfile_password is not None and s.ssl_certfile is None:
            problems.append(
                Problem("ssl_keyfile_password", "set, but there is no ssl_certfile/ssl_keyfile")
            )
        for name in _FILE_FIELDS:
            path: Path | None = getattr(s, name)
            if path is not None and not path.is_file():
                problems.append(Problem(name, f"file not found: {path}"))
    else:
        for name in _SSL_FIELDS:
            if getattr(s, name) is not None:
                problems.append(
                    Problem(
                        name,
                        f"only used with SSL or SASL_SSL, but security_protocol is "
                        f"{proto}; set {env_name('security_protocol')}=SSL or remove it",
                    )
                )
    if s.uses_sasl:
        if s.sasl_mechanism is None:
            problems.append(
                Problem(
                    "sasl_mechanism",
                    f"required with security_protocol {proto}: one of "
                    + ", ".join(get_args(SaslMechanism)),
                )
            )
        if not s.sasl_username:
            problems.append(Problem("sasl_username", f"required with security_protocol {proto}"))
        if s.sasl_password is None or not s.sasl_password.get_secret_value():
            problems.append(Problem("sasl_password", f"required with security_protocol {proto}"))
    else:
        for name in _SASL_FIELDS:
            if getattr(s, name) is not None:
                problems.append(
                    Problem(
                        name,
                        f"only used with SASL_PLAINTEXT or SASL_SSL, but "
                        f"security_protocol is {proto}",
                    )
                )
    return problems


def _from_validation_error(exc: ValidationError, config_file: Path | None) -> ConfigError:
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = err.get("loc", ())
        setting = str(loc[0]) if loc else "config"
        kind = err.get("type", "")
        ctx = err.get("ctx") or {}
        if kind == "literal_error":
            expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
            message = f"must be one of {expected}"
            if setting not in _SECRET_FIELDS:
                message += f" (got {err.get('input')!r})"
        elif kind == "extra_forbidden":
            message = "unknown setting (check the spelling)"
        elif kind == "value_error":
            message = str(ctx.get("error", err.get("msg", "invalid value")))
        else:
            message = f"invalid value: {err.get('msg', kind)}"
        problems.append(Problem(setting, message))
    return ConfigError(problems, config_file=config_file)


@contextmanager
def _using_config_file(path: Path | None) -> Iterator[None]:
    token = _config_file_var.set(path)
    try:
        yield
    finally:
        _config_file_var.reset(token)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment over ``config_file`` (or the file ``KETENBUS_CONFIG`` names).

    ``overrides`` (e.g. from command-line options) win over both; ``None`` values are ignored so
    an unset CLI option does not hide the environment.
    """
    path = config_file if config_file is not None else _active_config_file()
    if path is not None and not path.is_file():
        setting = "the --config option" if config_file is not None else CONFIG_ENV
        raise ConfigError(f"config file not found: {path} (from {setting})")
    with _using_config_file(path):
        return Settings(**{k: v for k, v in overrides.items() if v is not None})

"""Alert channels: where a monitor tells people that opinion is turning, and what it says.

A channel is a kind (``webhook``, ``slack``, ``teams``, ``dingtalk``, ``wecom``, ``feishu``,
``lark``, ``email``) plus the *name* of a secret that holds its address: an environment variable
or a key of ``.streamlit/secrets.toml`` (section ``[alerts]``). The registry and the pages only
ever hold that name; the address itself is read at send time and shown masked.

What each kind uses (checked against apprise 2.2.0's plugins and the services' robot docs):

- ``slack`` (incoming webhook), ``teams`` (a Workflows / Power Automate webhook: Microsoft retired
  the Office 365 connectors, and apprise 2.2.0 has no ``msteams`` plugin any more) and ``email``
  (a ``mailto://``/``mailtos://`` SMTP address, or ``smtp://``/``smtps://``) go through apprise,
  installed from ``requirements-alerts.txt``.
- ``dingtalk``, ``wecom`` (企业微信群机器人), ``feishu`` and ``lark`` robots are posted by us with
  the standard library: apprise 2.2.0 has plugins for them, but takes any HTTP 200 as delivered,
  while these robots answer 200 with an error code when they refuse a message (wrong token,
  signature or keyword), and it URL-encodes DingTalk's signature twice. Signing: DingTalk and
  Feishu/Lark, each as its docs describe.
- ``webhook``: our own JSON with stable keys (apprise's ``json://`` sends its own shape);
  optionally signed (HMAC-SHA256 of the body).

Texts from posts are untrusted: each is cut short, put on one line, formula-escaped (a leading
``=``, ``+``, ``-``, ``@``), and for chat channels (all but the webhook and e-mail) its markdown
and HTML characters are swapped for look-alikes, so a post cannot format, link or mention anyone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.exporting import escape_cell
from core.i18n import DEFAULT_LANGUAGE, LANGUAGES, msg, t

CHANNEL_KINDS = ("webhook", "slack", "teams", "dingtalk", "wecom", "feishu", "lark", "email")
# the apprise plugin that must come out of each kind's address, so a Slack secret that holds a
# Teams address is refused before anything is sent
_PLUGINS = {"slack": "NotifySlack", "teams": "NotifyWorkflows", "email": "NotifyEmail"}
_CHATS = ("dingtalk", "wecom", "feishu", "lark")  # JSON robots sent by us (see the module's story)
_SIGNED = ("webhook", "dingtalk", "feishu", "lark")  # kinds that take a signing secret
_PLAIN_KINDS = ("webhook", "email")  # the rest render markup, links or mentions in some form
# robots' error codes that mean "too many messages, try later" (DingTalk, WeCom, Feishu/Lark)
_RATE_LIMITED = {130101, 45009, 9499, 11232}
_SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
ROOT = Path(__file__).resolve().parents[1]
TEXT_LIMIT = 200  # characters of each example text in a message
EXAMPLES = 3  # example texts per alert
KEYWORDS = 8  # keywords per alert
ATTEMPTS = 3  # tries per delivery; between them BACKOFF_S, then twice that
BACKOFF_S = 2.0
TIMEOUT_S = 10.0  # per attempt; a dead channel costs a run at most ATTEMPTS × this
ANSWER_LIMIT = 500  # characters of a channel's answer kept in the registry


@dataclass
class Channel:
    """One place alerts go. ``secret`` and ``sign_secret`` are names, never the values."""

    kind: str
    secret: str
    name: str = ""  # shown on the page; the kind when empty
    sign_secret: str = ""  # DingTalk's signing secret, or the webhook's HMAC key

    def __post_init__(self) -> None:
        self.name = (self.name or self.kind).strip()

    def validate(self) -> Channel:
        if self.kind not in CHANNEL_KINDS:
            raise ConfigError("monitors.err.channel_kind", kind=self.kind, kinds=", ".join(CHANNEL_KINDS))
        for name in filter(None, (self.secret, self.sign_secret)):
            check_secret_name(name, self.name)
        if not self.secret:
            raise ConfigError("monitors.err.no_secret", channel=self.name)
        if self.sign_secret and self.kind not in _SIGNED:
            raise ConfigError("monitors.err.cannot_sign", channel=self.name, kind=self.kind)
        return self

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Channel:
        return cls(**{k: str(values.get(k) or "") for k in ("kind", "secret", "name", "sign_secret")})


def check_secret_name(name: str, channel: str) -> str:
    """A secret's name, or an error that says where the value itself belongs (a pasted URL)."""
    if not _SECRET_NAME.match(name or ""):
        raise ConfigError("monitors.err.secret_name", channel=channel, name=mask(name))
    return name


# ----------------------------------------------------------------------------------------
# Secrets
# ----------------------------------------------------------------------------------------
def secret_files() -> list[Path]:
    """Where secrets are read from: ``OPINIONLAB_SECRETS`` alone when set, else Streamlit's own
    places (the working folder's and the app's ``.streamlit/secrets.toml``, then the user's)."""
    if os.environ.get("OPINIONLAB_SECRETS"):
        return [Path(os.environ["OPINIONLAB_SECRETS"])]
    return [Path.cwd() / ".streamlit" / "secrets.toml", ROOT / ".streamlit" / "secrets.toml",
            Path.home() / ".streamlit" / "secrets.toml"]


def load_secrets() -> dict[str, str]:
    """Every string in the secret files' ``[alerts]`` sections and top levels; earlier files win."""
    found: dict[str, str] = {}
    for path in reversed(secret_files()):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue  # a missing or broken file holds no secrets; the name is reported as unset
        for section in (data, data.get("alerts") if isinstance(data.get("alerts"), dict) else {}):
            found.update({k: v for k, v in section.items() if isinstance(v, str)})
    return found


def resolve_secret(name: str, channel: str, secrets: Mapping[str, str] | None = None) -> str:
    """The value behind a secret's name: an environment variable first, then the secret files."""
    value = os.environ.get(name) or (load_secrets() if secrets is None else secrets).get(name)
    if not value or not value.strip():
        raise ConfigError("monitors.err.secret_unset", channel=channel, name=name)
    return value.strip()


def mask(value: str) -> str:
    """A secret as the pages may show it: the address's scheme and host, and its last 4 characters."""
    value = str(value or "")
    if len(value) <= 8:
        return "•" * len(value)
    parts = urllib.parse.urlsplit(value)
    host = (parts.hostname or "") if parts.scheme else ""
    head = f"{parts.scheme}://{host}/" if host else ""
    return f"{head}…{value[-4:]}" if len(value) > 16 else f"{head}…"


def _masked(text: str, secrets: list[str]) -> str:
    """A channel's answer with every secret (and each long piece of a secret URL) blotted out."""
    for secret in secrets:
        pieces = [secret] + [p for p in re.split(r"[/?&=@:]", secret) if len(p) >= 8]
        for piece in sorted(set(pieces), key=len, reverse=True):
            text = text.replace(piece, "•••")
    return text[:ANSWER_LIMIT]


# ----------------------------------------------------------------------------------------
# Messages
# ----------------------------------------------------------------------------------------
@dataclass
class Alert:
    """A spike as it is told to people; ``texts`` are raw (neutralised per channel when sent)."""

    monitor: str
    period: str  # the period's first day, YYYY-MM-DD
    freq: str
    metric: str  # negative_share or volume
    value: float
    baseline: float
    ratio: float | None
    severity: str
    volume: int
    group: str | None = None
    keywords: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    url: str = ""
    id: str = ""
    test: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Alert:
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_BREAK = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
# look-alikes for the characters markdown, Slack mrkdwn, Teams cards and HTML give meaning to
_MARKUP = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ", "#": "＃", "[": "［", "]": "］",
                         "(": "（", ")": "）", "<": "‹", ">": "›", "|": "｜", "\\": "＼", "@": "＠", "&": "＆"})


def neutralise(text: str, markup: bool = False, limit: int = TEXT_LIMIT) -> str:
    """A post's text made safe to quote: one line, at most ``limit`` characters, no formula
    start, and with ``markup`` no character a chat client would format, link or mention with."""
    line = " ".join(_CONTROL.sub(" ", _BREAK.sub(" ", str(text))).split())
    if len(line) > limit:
        line = line[:limit - 1].rstrip() + "…"
    if markup:
        line = line.translate(_MARKUP)
    return str(escape_cell(line))


def format_value(metric: str, value: float | None) -> str:
    """A share as a percentage with one decimal, a volume as a whole count."""
    if value is None or value != value:
        return "—"
    return f"{round(value):,}" if metric == "volume" else f"{value:.1%}"


def period_name(alert: Alert, lang: str) -> str:
    import pandas as pd

    from core.trends import period_label

    return period_label(pd.Timestamp(alert.period), alert.freq, lang)


def message(alert: Alert, lang: str = DEFAULT_LANGUAGE, markup: bool = False) -> tuple[str, str]:
    """The title and plain-text body of an alert in ``lang``: what surged, by how much against
    the usual, the top keywords, a few example texts and the link to the Trends view."""
    lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
    metric = t(f"trends.metric_{alert.metric}", lang)
    where = t("monitors.alert.in_group", lang, group=neutralise(alert.group, markup, 60)) if alert.group else ""
    title = t("monitors.alert.title", lang, monitor=alert.monitor, metric=metric, where=where,
              period=period_name(alert, lang))
    if alert.test:
        title = t("monitors.alert.test_prefix", lang) + title
    ratio = "—" if alert.ratio is None else f"{alert.ratio:.1f}"
    lines = [t("monitors.alert.value", lang, metric=metric, value=format_value(alert.metric, alert.value),
               baseline=format_value(alert.metric, alert.baseline), ratio=ratio,
               severity=t(f"trends.severity_{alert.severity}", lang), volume=f"{alert.volume:,}")]
    if alert.keywords:
        words = ", ".join(neutralise(k, markup, 40) for k in alert.keywords[:KEYWORDS])
        lines.append(t("monitors.alert.keywords", lang, keywords=words))
    if alert.texts:
        lines.append(t("monitors.alert.examples", lang))
        lines += [f"• {neutralise(text, markup)}" for text in alert.texts[:EXAMPLES]]
    if alert.url:
        lines.append(t("monitors.alert.link", lang, url=alert.url))
    return title, "\n".join(lines)


def webhook_payload(alert: Alert, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """The generic webhook's JSON. Stable keys: monitor, period, group, metric, value, baseline,
    ratio, severity, keywords, texts, url; the rest (id, label, volume, language, title, message,
    test) may grow."""
    title, body = message(alert, lang)
    return {"monitor": alert.monitor, "period": alert.period, "group": alert.group, "metric": alert.metric,
            "value": alert.value, "baseline": alert.baseline, "ratio": alert.ratio, "severity": alert.severity,
            "keywords": list(alert.keywords[:KEYWORDS]),
            "texts": [neutralise(text) for text in alert.texts[:EXAMPLES]], "url": alert.url,
            "id": alert.id, "period_label": period_name(alert, lang), "volume": alert.volume, "language": lang,
            "title": title, "message": body, "test": alert.test}


def test_alert(monitor: str, url: str = "") -> Alert:
    """A made-up alert for the "Send test alert" button: clearly marked, plausible numbers."""
    import pandas as pd

    monday = pd.Timestamp.today().normalize() - pd.Timedelta(days=pd.Timestamp.today().dayofweek)
    return Alert(monitor=monitor, period=f"{monday:%Y-%m-%d}", freq="W", metric="negative_share", value=0.42,
                 baseline=0.12, ratio=3.5, severity="high", volume=1234, keywords=["example", "test alert"],
                 texts=["This is a test alert from Opinion Lab. 这是一条测试提醒。"], url=url, id="test", test=True)


def public_url() -> str:
    """The app's address as people reach it, for links in alerts: ``OPINIONLAB_PUBLIC_URL``, else
    ``public_url`` in the secrets' ``[opinionlab]`` section, else this machine's default."""
    if os.environ.get("OPINIONLAB_PUBLIC_URL"):
        return os.environ["OPINIONLAB_PUBLIC_URL"].rstrip("/")
    return (opinionlab_setting("public_url") or "http://127.0.0.1:8501").rstrip("/")


def opinionlab_setting(key: str) -> str:
    """A value of the secret files' ``[opinionlab]`` section ('' when unset); earlier files win."""
    for path in secret_files():
        try:
            section = tomllib.loads(path.read_text(encoding="utf-8")).get("opinionlab") or {}
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if isinstance(section, dict) and section.get(key):
            return str(section[key])
    return ""


# ----------------------------------------------------------------------------------------
# Sending
# ----------------------------------------------------------------------------------------
@dataclass
class Delivery:
    """How one delivery went; ``answer`` is the channel's own answer (masked) or our message."""

    ok: bool
    answer: str | dict
    attempts: int


def deliver(channel: Channel, alert: Alert, lang: str = DEFAULT_LANGUAGE, attempts: int = ATTEMPTS,
            backoff_s: float = BACKOFF_S, timeout_s: float = TIMEOUT_S,
            sleep: Callable[[float], None] = time.sleep, secrets: Mapping[str, str] | None = None) -> Delivery:
    """Send ``alert`` to ``channel``, retrying failures that may pass (no answer, 5xx, 429) with
    exponential backoff. Never raises for a channel's fault: the answer says what went wrong."""
    try:
        send, values = _sender(channel, secrets)
    except ConfigError as exc:
        return Delivery(False, exc.message.to_dict() if exc.message else str(exc), 0)
    answer: str | dict = ""
    for attempt in range(1, max(attempts, 1) + 1):
        try:
            ok, answer, retry = send(alert, lang, timeout_s)
        except Exception as exc:  # a channel library's own fault is that channel's failure, not the run's
            ok, answer, retry = False, f"{type(exc).__name__}: {exc}", True
        answer = _masked(answer, values) if isinstance(answer, str) else answer
        if ok or not retry or attempt == attempts:
            return Delivery(ok, answer, attempt)
        sleep(backoff_s * 2 ** (attempt - 1))
    return Delivery(False, answer, attempts)


def _sender(channel: Channel, secrets: Mapping[str, str] | None) -> tuple[Callable, list[str]]:
    """The function that makes one attempt, and the secret values to mask in its answers."""
    channel.validate()
    address = resolve_secret(channel.secret, channel.name, secrets)
    sign = resolve_secret(channel.sign_secret, channel.name, secrets) if channel.sign_secret else ""
    values = [v for v in (address, sign) if v]
    markup = channel.kind not in _PLAIN_KINDS
    if channel.kind == "webhook":
        _check_http(channel, address)
        return (lambda alert, lang, timeout: _post_json(address, webhook_payload(alert, lang), timeout,
                                                        _signature_headers(sign))), values
    if channel.kind in _CHATS:
        _check_http(channel, address)

        def chat(alert: Alert, lang: str, timeout: float) -> tuple[bool, str, bool]:
            url, payload = _chat_request(channel.kind, address, sign, *message(alert, lang, markup=True))
            return _post_json(url, payload, timeout, {}, robot=True)
        return chat, values
    plugin = _apprise_plugin(channel, address)
    return (lambda alert, lang, timeout: _notify(plugin, alert, lang, timeout, markup)), values


def _check_http(channel: Channel, address: str) -> None:
    """An http(s) address, and for a robot the part that identifies it (token, key or hook)."""
    parts = urllib.parse.urlsplit(address)
    query = urllib.parse.parse_qs(parts.query)
    marks = {"dingtalk": "access_token" in query, "wecom": "key" in query,
             "feishu": "/hook/" in parts.path, "lark": "/hook/" in parts.path}
    if parts.scheme not in ("http", "https") or not parts.hostname or not marks.get(channel.kind, True):
        raise ConfigError("monitors.err.bad_url", channel=channel.name, name=channel.secret,
                          kind=msg(f"monitors.kind.{channel.kind}"), shown=mask(address))


def _signature_headers(sign: str) -> Callable[[bytes], dict[str, str]]:
    """Our webhook's signature: receivers check HMAC-SHA256(secret, body)."""
    def headers(body: bytes) -> dict[str, str]:
        if not sign:
            return {}
        return {"X-OpinionLab-Signature": "sha256=" + hmac.new(sign.encode(), body, hashlib.sha256).hexdigest()}
    return headers


def _chat_request(kind: str, address: str, sign: str, title: str, body: str) -> tuple[str, dict]:
    """The URL and JSON of a text message to a DingTalk, WeCom, Feishu or Lark group robot,
    signed as each documents it (DingTalk: HMAC of timestamp+secret in the query, URL-encoded
    once; Feishu/Lark: HMAC keyed by timestamp+secret in the body)."""
    text = f"{title}\n{body}"
    if kind in ("dingtalk", "wecom"):
        if kind == "dingtalk" and sign:
            stamp = str(round(time.time() * 1000))
            digest = hmac.new(sign.encode(), f"{stamp}\n{sign}".encode(), hashlib.sha256).digest()
            address += f"&timestamp={stamp}&sign={urllib.parse.quote_plus(base64.b64encode(digest))}"
        return address, {"msgtype": "text", "text": {"content": text}}
    payload: dict[str, Any] = {"msg_type": "text", "content": {"text": text}}
    if sign:
        stamp = str(int(time.time()))
        digest = hmac.new(f"{stamp}\n{sign}".encode(), b"", hashlib.sha256).digest()
        payload.update(timestamp=stamp, sign=base64.b64encode(digest).decode())
    return address, payload


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET without the alert: report it instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _post_json(url: str, payload: dict, timeout: float, headers: Callable[[bytes], dict] | dict,
               robot: bool = False) -> tuple[bool, str, bool]:
    """POST the JSON; (delivered, the answer, worth retrying). A ``robot`` answers HTTP 200 even
    when it refuses (bad token, signature, keyword), so its JSON error code decides."""
    body = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
    extra = headers(body) if callable(headers) else headers
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "OpinionLab-monitor",
        "Idempotency-Key": str(payload.get("id") or ""), **extra})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=timeout) as response:
            text = response.read(2000).decode("utf-8", "replace")
            status = response.status
    except urllib.error.HTTPError as exc:
        text = exc.read(300).decode("utf-8", "replace") if exc.fp else ""
        return False, f"HTTP {exc.code} {exc.reason} {text}".strip(), exc.code >= 500 or exc.code == 429
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}", True
    answer = f"HTTP {status} {text}".strip()
    if not robot:
        return True, answer, False
    try:
        reply = json.loads(text)
        code = reply.get("errcode", reply.get("code", reply.get("StatusCode", 0)))
    except (ValueError, AttributeError):
        return False, answer, True
    return code == 0, answer, code in _RATE_LIMITED


def _apprise_plugin(channel: Channel, address: str) -> Any:
    try:
        import apprise
    except ImportError as exc:
        raise ConfigError("monitors.err.no_apprise", channel=channel.name, kind=channel.kind) from exc
    parts = urllib.parse.urlsplit(address)
    if channel.kind == "email" and parts.scheme in ("smtp", "smtps"):  # the SMTP spelling people know
        address = ("mailtos" if parts.scheme == "smtps" else "mailto") + address[len(parts.scheme):]
    with apprise.LogCapture(level=logging.ERROR):  # apprise logs why it refuses a URL; we say it ourselves
        plugin = apprise.Apprise.instantiate(address)
    if plugin is None or type(plugin).__name__ != _PLUGINS[channel.kind]:
        raise ConfigError("monitors.err.bad_address", channel=channel.name, name=channel.secret,
                          kind=msg(f"monitors.kind.{channel.kind}"), shown=mask(address))
    return plugin


def _notify(plugin: Any, alert: Alert, lang: str, timeout: float, markup: bool) -> tuple[bool, str, bool]:
    import apprise

    plugin.socket_connect_timeout = plugin.socket_read_timeout = timeout
    title, body = message(alert, lang, markup=markup)
    with apprise.LogCapture(level=logging.WARNING) as logs:
        ok = plugin.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT)
    answer = " ".join(line.split(" - ", 2)[-1] for line in logs.getvalue().splitlines() if line.strip())
    return bool(ok), answer or ("sent" if ok else "failed without an answer"), True


def channel_summary(channel: Channel, secrets: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What the page and ``monitor show`` print about a channel: never the secret in full."""
    values = load_secrets() if secrets is None else secrets
    value = os.environ.get(channel.secret) or values.get(channel.secret)
    shown = mask(value) if value else msg("monitors.secret_missing", name=channel.secret).to_dict()
    return {**channel.to_dict(), "target": shown}

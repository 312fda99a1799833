"""Alert channels deliver to a local HTTP server and a local SMTP sink on 127.0.0.1, never anywhere else."""

import base64
import email
import email.policy
import hashlib
import hmac
import json
import socket
import socketserver
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core import alerting
from core.alerting import Alert, Channel
from core.errors import ConfigError


class Receiver:
    """A threaded HTTP server on 127.0.0.1 that records every request and answers with the
    next status of ``answers`` (200 when they run out)."""

    def __init__(self, answers=()):
        self.requests, self.answers = [], list(answers)
        self.reply = b'{"errcode": 0, "ok": true}'
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "body": body,
                                          "headers": {k.lower(): v for k, v in self.headers.items()}})
                status = receiver.answers.pop(0) if receiver.answers else 200
                reply = receiver.reply if status == 200 else b"server says no"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def json(self, i=-1):
        return json.loads(self.requests[i]["body"])

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def refused_url() -> str:
    """An address on 127.0.0.1 where nothing listens (the port was just free)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


class SmtpSink(socketserver.ThreadingTCPServer):
    """Just enough SMTP on 127.0.0.1 to accept mail (with AUTH PLAIN/LOGIN) and keep it."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self):
        self.messages = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line):
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self):
                self.reply("220 sink ready")
                mail = {"from": None, "to": [], "data": b""}
                while line := self.rfile.readline():
                    command = line.decode(errors="replace").strip()
                    verb = command.split(" ")[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.wfile.write(b"250-sink\r\n250-AUTH PLAIN LOGIN\r\n250 OK\r\n")
                    elif verb == "AUTH":
                        self.reply("235 ok" if "PLAIN" in command.upper() and len(command.split()) > 2 else "334 VXNlcm5hbWU6")
                        if not command.upper().startswith("AUTH PLAIN "):
                            self.rfile.readline()
                            self.reply("334 UGFzc3dvcmQ6")
                            self.rfile.readline()
                            self.reply("235 ok")
                    elif verb == "MAIL":
                        mail["from"] = command
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        mail["to"].append(command)
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 go on")
                        while (data := self.rfile.readline()) not in (b".\r\n", b""):
                            mail["data"] += data
                        sink.messages.append(dict(mail))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def secrets_file(tmp_path, monkeypatch):
    """OPINIONLAB_SECRETS points at a file of the test's own (never the developer's secrets)."""
    path = tmp_path / "secrets.toml"
    path.write_text("", encoding="utf-8")
    monkeypatch.setenv("OPINIONLAB_SECRETS", str(path))

    def write(**values):
        lines = ["[alerts]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return write


def sample_alert(**changes) -> Alert:
    values = dict(monitor="Phones", period="2026-11-23", freq="W", metric="negative_share", value=0.423,
                  baseline=0.118, ratio=3.58, severity="high", volume=1520, group="Weibo",
                  keywords=["battery", "overheating", "refund"],
                  texts=["=HYPERLINK(\"http://evil\") battery **died** <b>twice</b> @channel",
                         "Phone got hot\nand shut down. [click](http://x)", "电池 发热 严重，要求退款"],
                  url="http://127.0.0.1:8501/trends?source=monitor%3Amon_1&period=2026-11-23", id="alert_1")
    values.update(changes)
    return Alert(**values)


# Text neutralising and messages ----------------------------------------------------------------
def test_neutralise_cuts_flattens_and_disarms():
    assert alerting.neutralise("=SUM(A1:A9)") == "'=SUM(A1:A9)"
    assert alerting.neutralise("two\nlines<br />and\ttabs\u202e") == "two lines and tabs"
    long = alerting.neutralise("word " * 100, limit=30)
    assert len(long) == 30 and long.endswith("…")
    marked = alerting.neutralise("**bold** _it_ <b>x</b> [a](http://x) @here `code` # h | t", markup=True)
    assert not set(marked) & set("*_<>[]()@`#|")
    assert "bold" in marked and "http://x" in marked  # the words stay readable
    assert alerting.neutralise("<b>plain</b> **stays**") == "<b>plain</b> **stays**"  # plain text is not rendered


def test_message_in_english_and_chinese():
    title, body = alerting.message(sample_alert(), "en")
    assert title == "Opinion Lab · Phones: negative share surged in Weibo, 2026-11-23 (week 48)"
    assert "negative share 42.3% against a usual 11.8% (3.6× usual); severity high; 1,520 texts" in body
    assert "Top keywords: battery, overheating, refund" in body
    assert "Open in Trends: http://127.0.0.1:8501/trends?" in body
    lines = body.splitlines()
    examples = lines[lines.index("Examples:") + 1:-1]
    assert len(examples) == 3 and examples[0].startswith("• '=HYPERLINK")  # formula-escaped
    assert all("\n" not in e for e in examples)
    zh_title, zh_body = alerting.message(sample_alert(), "zh")
    assert zh_title == "舆情实验室 · Phones：2026-11-23（第 48 周）（Weibo）负面占比异常升高"
    assert "平时为 11.8%" in zh_body and "严重程度：高" in zh_body and "主要关键词" in zh_body
    assert "在趋势页查看" in zh_body and "电池 发热 严重" in zh_body
    volume = alerting.message(sample_alert(metric="volume", value=812.0, baseline=201.0, group=None), "en")
    assert "volume surged, " in volume[0] and "volume 812 against a usual 201" in volume[1]


def test_webhook_payload_has_the_stable_keys():
    payload = alerting.webhook_payload(sample_alert(), "zh")
    stable = {"monitor", "period", "group", "metric", "value", "baseline", "ratio", "severity", "keywords", "texts",
              "url"}
    assert stable <= set(payload)
    assert payload["monitor"] == "Phones" and payload["period"] == "2026-11-23" and payload["group"] == "Weibo"
    assert payload["metric"] == "negative_share" and payload["value"] == 0.423 and payload["ratio"] == 3.58
    assert payload["keywords"] == ["battery", "overheating", "refund"]
    assert payload["texts"][0].startswith("'=HYPERLINK") and len(payload["texts"]) == 3
    assert payload["language"] == "zh" and "负面占比" in payload["title"]
    json.dumps(payload)  # serialisable as it is


# Secrets --------------------------------------------------------------------------------------
def test_secrets_by_name_from_the_environment_or_the_file(secrets_file, monkeypatch):
    secrets_file(TEAM_HOOK="https://hooks.example.com/services/T0/B0/abcdefSECRET")
    assert alerting.resolve_secret("TEAM_HOOK", "ops").endswith("abcdefSECRET")
    monkeypatch.setenv("TEAM_HOOK", "https://override.example.com/x/yyyyyyyy")
    assert alerting.resolve_secret("TEAM_HOOK", "ops") == "https://override.example.com/x/yyyyyyyy"
    with pytest.raises(ConfigError, match="the secret MISSING_ONE is not set"):
        alerting.resolve_secret("MISSING_ONE", "ops")
    shown = alerting.channel_summary(Channel("slack", "TEAM_HOOK"))["target"]
    assert shown == "https://override.example.com/…yyyy" and "x/yyyyyyyy" not in shown
    assert alerting.channel_summary(Channel("slack", "NOT_SET"))["target"]["key"] == "monitors.secret_missing"
    assert alerting.mask("short") == "•••••"


def test_a_pasted_url_is_not_taken_as_a_secret_name():
    with pytest.raises(ConfigError, match="is not a secret's name") as caught:
        Channel("slack", "https://hooks.slack.com/services/T0/B0/realtoken123").validate()
    assert "realtoken123" not in str(caught.value)  # even the error does not repeat the secret
    with pytest.raises(ConfigError, match="takes no signing secret"):
        Channel("slack", "SLACK_HOOK", sign_secret="SLACK_SIGN").validate()
    with pytest.raises(ConfigError, match="not one of"):
        Channel("pager", "X").validate()


# The generic webhook ------------------------------------------------------------------------
def test_webhook_receives_json_signed_with_hmac(receiver, secrets_file):
    secrets_file(HOOK=receiver.url + "/alerts", HOOK_KEY="s3cret-key")
    result = alerting.deliver(Channel("webhook", "HOOK", sign_secret="HOOK_KEY"), sample_alert())
    assert result.ok and result.attempts == 1 and result.answer.startswith("HTTP 200")
    sent = receiver.requests[0]
    assert sent["path"] == "/alerts" and receiver.json()["monitor"] == "Phones"
    expected = hmac.new(b"s3cret-key", sent["body"], hashlib.sha256).hexdigest()
    assert sent["headers"]["x-opinionlab-signature"] == f"sha256={expected}"
    assert sent["headers"]["idempotency-key"] == "alert_1"


def test_retries_with_backoff_then_succeeds(secrets_file):
    server = Receiver(answers=[503, 500])
    try:
        secrets_file(HOOK=server.url + "/h")
        waits = []
        result = alerting.deliver(Channel("webhook", "HOOK"), sample_alert(), sleep=waits.append, backoff_s=1.5)
        assert result.ok and result.attempts == 3 and len(server.requests) == 3
        assert waits == [1.5, 3.0]
    finally:
        server.close()


def test_a_client_error_is_not_retried(secrets_file):
    server = Receiver(answers=[404])
    try:
        secrets_file(HOOK=server.url + "/gone")
        result = alerting.deliver(Channel("webhook", "HOOK"), sample_alert(), sleep=lambda s: None)
        assert not result.ok and result.attempts == 1 and result.answer.startswith("HTTP 404")
    finally:
        server.close()


def test_refused_connection_and_malformed_url(secrets_file):
    secrets_file(DEAD=refused_url(), BROKEN="hooks.example.com/no-scheme")
    waits = []
    result = alerting.deliver(Channel("webhook", "DEAD"), sample_alert(), sleep=waits.append)
    assert not result.ok and result.attempts == 3 and "refused" in result.answer.lower() and len(waits) == 2
    broken = alerting.deliver(Channel("webhook", "BROKEN"), sample_alert())
    assert not broken.ok and broken.attempts == 0 and broken.answer["key"] == "monitors.err.bad_url"
    unset = alerting.deliver(Channel("webhook", "NOPE"), sample_alert())
    assert unset.answer["key"] == "monitors.err.secret_unset"


def test_answers_never_show_the_secret(secrets_file):
    server = Receiver(answers=[400])
    try:
        token = "tokenABCDEF123456"
        secrets_file(HOOK=f"{server.url}/hook/{token}")
        server.answers = [400]
        result = alerting.deliver(Channel("webhook", "HOOK"), sample_alert())
        assert token not in str(result.answer)
    finally:
        server.close()


# Channels through apprise ---------------------------------------------------------------------
@pytest.fixture
def apprise():
    return pytest.importorskip("apprise")


def test_slack_payload_reaches_the_local_server(apprise, receiver, secrets_file, monkeypatch):
    from apprise.plugins.slack import NotifySlack

    monkeypatch.setattr(NotifySlack, "webhook_url", receiver.url + "/services")
    receiver.reply = b"ok"  # what Slack's incoming webhooks answer
    secrets_file(SLACK="https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX")
    result = alerting.deliver(Channel("slack", "SLACK"), sample_alert(), "en")
    assert result.ok, result.answer
    request = receiver.requests[0]
    assert request["path"] == "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
    payload = receiver.json()
    text = json.dumps(payload, ensure_ascii=False)
    assert "negative share surged in Weibo" in text and "Top keywords" in text
    assert "**died**" not in text and "<b>" not in text and "@channel" not in text  # neutralised for Slack
    assert "died" in text


def test_dingtalk_is_signed_with_its_secret_url_encoded_once(receiver, secrets_file):
    secrets_file(DING=receiver.url + "/robot/send?access_token=abc123token", DING_SIGN="SECdeadbeef42")
    result = alerting.deliver(Channel("dingtalk", "DING", sign_secret="DING_SIGN"), sample_alert(), "zh")
    assert result.ok, result.answer
    raw_query = urllib.parse.urlsplit(receiver.requests[0]["path"]).query
    query = urllib.parse.parse_qs(raw_query)
    assert query["access_token"] == ["abc123token"] and "%25" not in raw_query  # encoded once, as DingTalk checks
    timestamp, sign = query["timestamp"][0], query["sign"][0]
    expected = base64.b64encode(hmac.new(b"SECdeadbeef42", f"{timestamp}\nSECdeadbeef42".encode(),
                                         hashlib.sha256).digest()).decode()
    assert sign == expected
    content = receiver.json()["text"]["content"]
    assert "负面占比异常升高" in content and "**died**" not in content and "<b>" not in content


def test_a_robot_that_refuses_with_http_200_is_a_failure(secrets_file):
    """DingTalk answers a wrong signature with HTTP 200 and an error code: not delivered, not retried."""
    server = Receiver()
    server.reply = b'{"errcode": 310000, "errmsg": "sign not match"}'
    try:
        secrets_file(DING=server.url + "/robot/send?access_token=tok")
        waits = []
        result = alerting.deliver(Channel("dingtalk", "DING"), sample_alert(), sleep=waits.append)
        assert not result.ok and "sign not match" in result.answer and result.attempts == 1 and waits == []
    finally:
        server.close()


@pytest.mark.parametrize("kind, path", [("wecom", "/cgi-bin/webhook/send?key=wecomkey123"),
                                        ("feishu", "/open-apis/bot/v2/hook/feishutoken123"),
                                        ("lark", "/open-apis/bot/v2/hook/larktoken123")])
def test_chinese_team_chats_receive_text(receiver, secrets_file, kind, path):
    secrets_file(CHAT=receiver.url + path)
    result = alerting.deliver(Channel(kind, "CHAT"), sample_alert(), "zh")
    assert result.ok, result.answer
    payload = receiver.json()
    text = payload["text"]["content"] if kind == "wecom" else payload["content"]["text"]
    assert text.startswith("舆情实验室 · Phones") and "负面占比异常升高" in text


def test_feishu_signature(receiver, secrets_file):
    secrets_file(FEISHU=receiver.url + "/open-apis/bot/v2/hook/tok", FEISHU_SIGN="feishu-secret")
    assert alerting.deliver(Channel("feishu", "FEISHU", sign_secret="FEISHU_SIGN"), sample_alert()).ok
    payload = receiver.json()
    key = f"{payload['timestamp']}\nfeishu-secret".encode()
    assert payload["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def test_a_robot_url_without_its_token_is_refused(secrets_file):
    secrets_file(DING="https://oapi.dingtalk.com/robot/send")
    result = alerting.deliver(Channel("dingtalk", "DING"), sample_alert())
    assert not result.ok and result.attempts == 0 and result.answer["key"] == "monitors.err.bad_url"


def test_teams_takes_a_workflows_url_and_refuses_others(apprise, secrets_file):
    from core.alerting import _apprise_plugin

    url = ("https://prod-01.westus.logic.azure.com:443/workflows/abc123/triggers/manual/paths/invoke"
           "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=SIGNATURE123")
    assert type(_apprise_plugin(Channel("teams", "T"), url)).__name__ == "NotifyWorkflows"
    secrets_file(TEAMS="https://hooks.slack.com/services/T0/B0/notteams12345")
    result = alerting.deliver(Channel("teams", "TEAMS"), sample_alert())
    assert not result.ok and result.answer["key"] == "monitors.err.bad_address"


def test_email_through_a_local_smtp_sink(apprise, secrets_file):
    sink = SmtpSink()
    try:
        secrets_file(MAIL=f"mailto://alerts:pa55word@example.com?smtp=127.0.0.1&port={sink.port}&mode=insecure"
                          "&to=team@example.com&from=alerts@example.com")
        result = alerting.deliver(Channel("email", "MAIL"), sample_alert(), "en")
        assert result.ok, result.answer
        assert len(sink.messages) == 1 and "team@example.com" in sink.messages[0]["to"][0]
        mail = email.message_from_bytes(sink.messages[0]["data"], policy=email.policy.default)
        assert mail["subject"].startswith("Opinion Lab · Phones: negative share surged")
        assert "Top keywords: battery" in mail.get_body().get_content()
    finally:
        sink.shutdown()
        sink.server_close()


def test_without_apprise_a_chat_channel_says_how_to_install_it(secrets_file, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "apprise", None)
    secrets_file(SLACK="https://hooks.slack.com/services/T0/B0/XXXXXXXXXXXX")
    result = alerting.deliver(Channel("slack", "SLACK"), sample_alert())
    assert not result.ok and result.answer["key"] == "monitors.err.no_apprise"
    assert "requirements-alerts.txt" in alerting.t("monitors.err.no_apprise", channel="slack", kind="slack")

import hmac
import json

from core import auth
from core.cli import main


def test_hash_and_verify_round_trip():
    encoded = auth.hash_password("correct horse battery", iterations=1000)
    assert encoded.startswith("pbkdf2_sha256$1000$") and "correct" not in encoded
    assert auth.verify_password("correct horse battery", encoded)
    assert not auth.verify_password("correct horse batterx", encoded)
    assert not auth.verify_password("", encoded)
    assert auth.hash_password("same", iterations=1000) != auth.hash_password("same", iterations=1000)  # salted


def test_verify_compares_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    auth.verify_password("x", auth.hash_password("y", iterations=1000))
    assert calls == [(32, 32)]


def test_garbage_hashes_never_match():
    for bad in ("", "plain", "md5$1$a$b", "pbkdf2_sha256$x$y$z", "pbkdf2_sha256$10$!!$!!"):
        assert auth.verify_password("anything", bad) is False


def test_mode_from_secrets():
    assert auth.mode({}) == "none"
    assert auth.mode({"opinionlab": {"password_hash": "pbkdf2_sha256$1$a$b"}}) == "password"
    oidc = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s", "client_id": "c",
            "client_secret": "x", "server_metadata_url": "https://id.example/.well-known/openid-configuration"}
    assert auth.mode({"auth": oidc}) == "oidc"
    assert auth.mode({"auth": {"redirect_uri": "r", "cookie_secret": "s", "google": {"client_id": "c"}}}) == "oidc"

    class NoSecretsFile(dict):
        def get(self, key, default=None):
            raise FileNotFoundError("no secrets.toml")

    assert auth.mode(NoSecretsFile()) == "none"


def test_display_name_prefers_email():
    assert auth.display_name({"email": "ana@x.org", "name": "Ana"}) == "ana@x.org"
    assert auth.display_name({"name": "Ana"}) == "Ana" and auth.display_name({}) is None


def test_cli_hash_password(monkeypatch, capsys):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO("a long shared secret\n"))
    assert main(["auth", "hash-password", "--stdin", "--json"]) == 0
    encoded = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["password_hash"]
    assert auth.verify_password("a long shared secret", encoded)
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["auth", "hash-password", "--stdin"]) == 2

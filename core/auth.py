"""Who may use the app: OpenID Connect through Streamlit, or one shared password, or nobody asks.

- ``oidc``: ``.streamlit/secrets.toml`` has an ``[auth]`` section (``redirect_uri``,
  ``cookie_secret``, ``client_id``, ``client_secret``, ``server_metadata_url``, or named
  providers ``[auth.NAME]``); every page then requires ``st.login``.
- ``password``: ``[opinionlab] password_hash = "pbkdf2_sha256$..."`` (made with
  ``python -m core auth hash-password``); the hash is compared in constant time.
- ``none`` (the default): no login; the server listens on 127.0.0.1 only.

Nothing here imports streamlit: the page layer passes ``st.secrets`` in as a mapping.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any

from core.errors import ConfigError

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 600_000  # OWASP 2023 guidance for PBKDF2-HMAC-SHA256


def hash_password(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    if not password:
        raise ConfigError("auth.err.empty_password")
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return "$".join([ALGORITHM, str(iterations), base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded`` (from :func:`hash_password`), in constant time."""
    try:
        algorithm, iterations, salt, expected = encoded.split("$")
        if algorithm != ALGORITHM:
            return False
        digest = hashlib.pbkdf2_hmac("sha256", (password or "").encode("utf-8"), base64.b64decode(salt),
                                     int(iterations))
        return hmac.compare_digest(digest, base64.b64decode(expected))
    except (ValueError, TypeError):
        return False


def _section(secrets: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    try:
        value = secrets.get(name)
    except Exception:  # st.secrets raises when there is no secrets file at all
        return {}
    return value if isinstance(value, Mapping) else {}


def mode(secrets: Mapping[str, Any]) -> str:
    """``oidc``, ``password`` or ``none`` from the app's secrets."""
    auth = _section(secrets, "auth")
    if auth and ("client_id" in auth or any(isinstance(v, Mapping) for v in auth.values())):
        return "oidc"
    if _section(secrets, "opinionlab").get("password_hash"):
        return "password"
    return "none"


def password_hash(secrets: Mapping[str, Any]) -> str:
    return str(_section(secrets, "opinionlab").get("password_hash", ""))


def display_name(user: Mapping[str, Any]) -> str | None:
    """The name recorded as ``created_by``: e-mail, else name, else the subject id."""
    for key in ("email", "name", "preferred_username", "sub"):
        if user.get(key):
            return str(user[key])
    return None

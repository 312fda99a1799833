from core import auth
from core.workspace import Registry
from tests.conftest import csv_bytes
from tests.pages.conftest import open_page
from tests.pages.test_data_page import upload

HASH = auth.hash_password("a long shared secret", iterations=1000)


def test_no_login_by_default(app):
    app.run()
    assert not app.exception and app.title[0].value == "Opinion Lab"
    assert not any(b.key == "auth_logout" for b in app.sidebar.button)


def test_shared_password_gate_and_created_by(app):
    app.secrets["opinionlab"] = {"password_hash": HASH}
    app.run()
    assert app.title[0].value == "Sign in to Opinion Lab"
    assert not any(b.label == "Data" for b in app.sidebar.button)  # nothing else renders
    app.text_input(key="auth_name").input("Ana")
    app.text_input(key="auth_password").input("wrong password!")
    app.button[0].click().run()
    assert any("not right" in e.value for e in app.error)
    app.text_input(key="auth_password").input("a long shared secret")
    app.button[0].click().run()
    assert not app.exception and app.title[0].value == "Opinion Lab"
    assert any("Signed in as Ana" in c.value for c in app.sidebar.caption)
    # what the person creates records who did it
    app.switch_page("pages/data.py").run()
    rows = [(f"Review {i}: {'great film' if i % 2 else 'awful film'}", "positive" if i % 2 else "negative")
            for i in range(20)]
    upload(app, "mine.csv", csv_bytes(rows))
    app.button(key="FormSubmitter:save_dataset-Save dataset").click().run()
    assert not app.exception
    assert Registry().datasets()[0]["created_by"] == "Ana"


def test_oidc_requires_st_login(app):
    app.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32,
                           "client_id": "opinion-lab", "client_secret": "x",
                           "server_metadata_url": "https://id.example.org/.well-known/openid-configuration"}
    app.user = {"is_logged_in": False}
    app.run()
    assert app.title[0].value == "Sign in to Opinion Lab" and app.button(key="auth_login")
    app.user = {"is_logged_in": True, "email": "li.wei@example.org", "name": "Li Wei"}
    app.run()
    assert not app.exception and app.title[0].value == "Opinion Lab"
    assert any("Signed in as li.wei@example.org" in c.value for c in app.sidebar.caption)
    open_page(app, "pages/trends.py")  # every page sits behind the same gate

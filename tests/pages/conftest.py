from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def app():
    """The whole app (navigation, sidebar) started on its home page."""
    return AppTest.from_file(APP, default_timeout=120)


def open_page(app, page: str):
    """Start the app, switch to ``page`` (e.g. 'pages/score.py') and check it rendered cleanly."""
    app.run()
    app.switch_page(page).run()
    assert not app.exception
    return app

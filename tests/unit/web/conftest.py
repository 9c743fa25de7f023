"""The web app over a fake backend, for every web test module (defined in test_web_app)."""

from tests.unit.web.test_web_app import web  # noqa: F401  (a fixture: pytest finds it by name)

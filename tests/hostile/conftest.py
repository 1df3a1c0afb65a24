"""The app tests here reuse the UI suite's window fixtures."""
from tests.ui.conftest import audit, captured_dialogs, make_window  # noqa: F401

"""Files of the repository the tests read or run."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# The dashboard's entry point, for Streamlit's AppTest.
APP = str(ROOT / "dashboard" / "app.py")

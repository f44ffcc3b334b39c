"""What several test modules share: helpers, data and texts. Fixtures stay in tests/conftest.py; no
test module imports another test module or conftest."""

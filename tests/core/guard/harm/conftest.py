"""The guard-model fixtures come from tests/fixtures/guard_models.py (registered in tests/conftest.py)."""

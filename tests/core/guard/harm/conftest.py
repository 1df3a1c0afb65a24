"""The guard-model fixtures (tests/fixtures/guard_models.py) for these tests."""
from tests.fixtures.guard_models import (tiny_llama_guard_judge, tiny_llama_guard_path,  # noqa: F401
                                         tiny_qwen3guard_judge, tiny_qwen3guard_path)

"""The guest tier's batched cases (lab_tests/batch.py): one run for the whole session."""

import pytest

from lab_tests.batch import run_cases


@pytest.fixture(scope="session")
def results(lab, request):
    """Case -> RunResult for every Case among the selected tests' parameters."""
    return run_cases(lab, request.session.items)

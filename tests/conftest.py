"""Shared by every test: the working directory is restored after each test; helpers live in ``helpers.py``."""

import os

import pytest


@pytest.fixture(autouse=True)
def _keep_the_working_directory():
    """nbval reads notebooks/sanitize.cfg relative to the working directory, so no test may leave the
    process elsewhere (the runner itself never moves it: tests/replication/test_pipeline.py)."""
    here = os.getcwd()
    yield
    os.chdir(here)

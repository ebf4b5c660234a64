"""Shared by every test: the working directory is restored after each test; helpers live in ``helpers.py``."""

import os

import pytest


@pytest.fixture(autouse=True)
def _keep_the_working_directory():
    """A test that runs a notebook in-process (papermill moves the process's working directory) must
    not leave nbval, which reads notebooks/sanitize.cfg relative to it, somewhere else."""
    here = os.getcwd()
    yield
    os.chdir(here)

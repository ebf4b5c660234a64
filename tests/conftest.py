"""Shared by every test: nothing here but what pytest needs; helpers live in ``helpers.py``."""

"""Helpers for the UI tests: start the real app (``python app.py``) on a free port with a temp index."""

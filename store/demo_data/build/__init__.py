"""Builders that turn the hand-written sources into the demo tenant's JSON files (see ../generate.py)."""

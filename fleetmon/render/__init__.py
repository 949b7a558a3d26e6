"""Renderers (pure): the report model in, a string out."""

"""Panels of the plugin."""

PANELS = []

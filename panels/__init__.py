"""Panels of the plugin."""

from .person_search import PersonSearchPanel

PANELS = [PersonSearchPanel]

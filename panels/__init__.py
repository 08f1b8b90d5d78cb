"""Panels of the plugin."""

from .matcher_training import MatcherTrainingPanel
from .person_search import PersonSearchPanel

PANELS = [PersonSearchPanel, MatcherTrainingPanel]

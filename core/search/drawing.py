"""A colormap for FiftyOne's label drawing: matches in one colour, everyone else in another.

eta colours a box by the hash of its title; with per-label colours only,
that hash is ``hash(label)``, so comparing it with ``hash("match")`` in the
drawing process gives a fixed colour per label (Python salts string hashes
per process, so a plain colour list cannot). Imported only when drawing.
"""

from eta.core.annotations import Colormap
from eta.core.config import Config


class MatchColormapConfig(Config):
    """Settings of :class:`MatchColormap`."""

    def __init__(self, d):
        self.match_label = self.parse_string(d, "match_label")
        self.match_color = self.parse_string(d, "match_color")
        self.other_color = self.parse_string(d, "other_color")


class MatchColormap(Colormap):
    """``match_color`` for boxes labelled ``match_label``, ``other_color`` for the rest."""

    def __init__(self, config):
        self.validate(config)
        self.config = config

    @property
    def colors(self):
        return [self.config.match_color, self.config.other_color]

    def get_color(self, index):
        return self.config.match_color if index == hash(self.config.match_label) else self.config.other_color

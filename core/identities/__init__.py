"""Identities: tracks linked across videos and cameras (:mod:`.linking` on vectors, :mod:`.tracks` on datasets)."""

from .tracks import identity_summary, link_identities, person_tracks

__all__ = ["identity_summary", "link_identities", "person_tracks"]

"""Identities: tracks linked across videos and cameras (:mod:`.linking` on vectors, :mod:`.tracks` on
datasets), query by example (:mod:`.examples`), footage as a re-identification dataset (:mod:`.export`)."""

from .export import export_reid_dataset
from .tracks import identity_summary, link_identities, person_tracks

__all__ = ["export_reid_dataset", "identity_summary", "link_identities", "person_tracks"]

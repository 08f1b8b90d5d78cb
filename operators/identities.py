"""Operators over ``core.identities``: link the indexed tracks of every video and camera into identities."""

from __future__ import annotations

from ..core import contract, defaults
from .base import Param, PersonFinderOperator, progress_reporter


class LinkIdentities(PersonFinderOperator):
    """Link tracks across videos and cameras into identities (never two people seen in one frame)."""

    name, label = "link_identities", "link identities"
    description = ("Give the same person one identity across videos and cameras, from the person index's "
                   "embeddings; writes identity and identity_confidence on every person")
    execution = "choose"
    params = (
        Param("threshold", "float", default=defaults.IDENTITY_LINK_THRESHOLD, min=-1.0, max=1.0,
              label="Link threshold (cosine)",
              description="Groups of tracks whose mean embeddings are at least this similar become one identity"),
        Param("neighbors", "int", default=defaults.IDENTITY_LINK_NEIGHBORS, min=1, label="Candidates per track"),
        Param("persons_field", default=contract.PERSONS_FIELD, label="Persons field",
              description="Where index_persons wrote the people"),
    )

    def run(self, ctx, **params):
        from ..core.identities import link_identities

        return link_identities(ctx.target_view(), on_progress=progress_reporter(ctx), **params)

    def summarize(self, ctx, result):
        unembedded = f"; {result['unembedded_tracks']} tracks without an embedding were left out" \
            if result["unembedded_tracks"] else ""
        return f"{result['linked_tracks']} tracks linked into {result['identities']} identities " \
               f"(`{contract.IDENTITY_ATTR}` on each person){unembedded}"


OPERATORS = [LinkIdentities]

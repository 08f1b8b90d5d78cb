"""Text-to-person search: track, index, query.

Two steps, each one function: :func:`index_persons` finds, tracks and embeds
the people once; :func:`search_persons` / :func:`rank_persons` embed only the
text of a query. Files, in the order a search runs: ``tracking`` (videos),
``indexing``, ``store``, ``index`` and ``backends`` (the vector store),
``writes`` (labels on the dataset), ``gallery`` and ``query`` (answering),
``panel_data``, ``export`` / ``drawing``.

Example::

    from person_finder.core.search import index_persons, search_persons, rank_persons
    index_persons(dataset, matcher="google/siglip-base-patch16-224", detector="yolo26n.pt")
    view = search_persons(dataset, "a woman in a white t-shirt with a brown shoulder bag", threshold=0.1)
    rows = rank_persons(dataset, "red top and blue trousers", k=10)
"""

from .indexing import index_persons
from .query import rank_persons, search_persons
from .results import last_search, saved_color_scheme
from .validation import check_threshold, detections_fields

__all__ = ["index_persons", "search_persons", "rank_persons", "last_search", "saved_color_scheme", "check_threshold", "detections_fields"]

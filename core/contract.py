"""The data contract: names of the fields, tags, labels, views, run keys and secrets the plugin reads and writes.

These are what a dataset holds after each stage, so other tools (and the
next stage) can rely on them; tunables live in :mod:`core.defaults`.
Every function that writes one takes it as a keyword argument defaulting
to the name here.

Example::

    from person_finder.core import contract
    dataset.match_tags(contract.VAL_TAG).distinct(contract.PERSON_ID_FIELD)
"""

# --- the plugin and its secrets -------------------------------------------------------------------
PLUGIN_NAME = "@openset-reid/person-finder"
GEMINI_SECRET = "GEMINI_API_KEY"
#: Secret holding the URL live alerts are POSTed to (a webhook URL often carries its token).
LIVE_WEBHOOK_SECRET = "PERSON_FINDER_WEBHOOK_URL"
#: Secret holding the Hugging Face token used to publish / load private datasets.
HF_TOKEN_SECRET = "HF_TOKEN"
#: Name of the zoo model (in this plugin's local model source) wrapping the matcher.
MATCHER_ZOO_MODEL = "person-finder-matcher"
#: Operator the panel offers when the dataset has no person index that answers text prompts.
PANEL_INDEX_OPERATOR = "@openset-reid/person-finder/index_persons"
#: Execution store (scoped to the dataset) holding the panel's recent queries; survives App restarts.
PANEL_STORE = "person_finder_panel"

# --- person-crop (ReID) datasets ------------------------------------------------------------------
PERSON_ID_FIELD = "person_id"
CAMERA_ID_FIELD = "camera_id"
SPLIT_TAGS = ("train", "query", "gallery")
VAL_TAG = "val"
DISTRACTOR_TAG = "distractor"
#: Dict field of Market-1501's 27 original attribute codes (1 = no, 2 = yes; age 1-4).
MARKET_ATTRIBUTES_FIELD = "market_attributes"
ATTRIBUTES_FIELD = "attributes"
ATTRIBUTES_ERROR_FIELD = "attributes_error"
MERGED_ATTRIBUTES_FIELD = "merged_attributes"
AGREEMENT_FIELD = "attribute_agreement"
#: Attribute of the merged document listing, per disagreeing field, which views said what.
CONFLICTS_ATTR = "conflicts"
DESCRIPTION_FIELD = "description"

# --- curation: near-duplicates and leaks ----------------------------------------------------------
#: Brain key of the DINOv2 similarity index behind near-duplicate and leakage search.
DEDUPE_BRAIN_KEY = "dedupe_dinov2"
DUPLICATE_TAG = "near_duplicate"
REPRESENTATIVE_TAG = "duplicate_representative"
#: Sample id of the representative of a sample's near-duplicate group (on both members and representative).
DUPLICATE_GROUP_FIELD = "duplicate_group"
DUPLICATES_VIEW = "near_duplicates"
REPRESENTATIVES_VIEW = "duplicate_representatives"
#: ``dataset.info`` key: file paths of the samples curation removed (an import never adds them back).
REMOVED_FILES_INFO = "person_finder_removed_files"
LEAK_TAG = "split_leak"
LEAKS_VIEW = "split_leaks"

# --- scene images and videos (search) -------------------------------------------------------------
PERSONS_FIELD = "persons"
PERSON_LABEL = "person"
MATCH_LABEL = "match"
SIMILARITY_ATTR = "similarity"
PROBABILITY_ATTR = "probability"
SAMPLE_SIMILARITY_FIELD = "person_similarity"
VIDEO_MATCHES_FIELD = "person_matches"
#: Sample field (videos): number of person tracks found; also marks a video as processed.
PERSON_TRACKS_FIELD = "person_tracks"
PERSON_ERROR_FIELD = "person_search_error"
PERSON_INDEX_KEY = "person_index"
#: Default brain key of ``build_text_index`` (a plain text index of images or patches, never the person index's).
TEXT_INDEX_KEY = "text_index"
#: Attribute of the detection a crop embedding was cut from (one per track refresh in videos, every person in images).
EMBEDDING_ATTR = "embedding"
#: Attribute of every person detection: the label id of the detection whose embedding it uses (its own in images).
EMBEDDING_ID_ATTR = "embedding_id"
#: Attributes of each person detection written by ``link_identities``: the person (int, one across videos and
#: cameras) and how sure the link is (0.5 = a tie with the nearest other identity, 1 = clear).
IDENTITY_ATTR = "identity"
IDENTITY_CONFIDENCE_ATTR = "identity_confidence"
#: Run key of the identity summary (where and when each identity appears).
IDENTITY_RUN_KEY = "person_identities"
#: Run key of the last attributes run on indexed persons (``view_attributes`` / ``merged_attributes`` /
#: ``attribute_agreement`` / ``attributes_error`` are then attributes of the person detections).
PERSON_ATTRIBUTES_RUN_KEY = "person_attributes_indexed"
#: The per-crop attributes on a person detection (FiftyOne labels already have a legacy ``attributes`` dict).
VIEW_ATTRIBUTES_ATTR = "view_attributes"
#: Attributes written on the persons by an attribute-aware query: how well the person's merged attributes
#: satisfy the query's constraints (in [-1, 1]) and the fused score the ranking used.
ATTRIBUTE_SCORE_ATTR = "attribute_score"
FUSED_SCORE_ATTR = "fused_score"
#: Attribute of a person detection holding Gemini's verification of it against the last verified query.
VERIFICATION_ATTR = "verification"
#: Run key of the last verification run (cost estimate, calls, failures).
VERIFY_RUN_KEY = "person_verification"
#: Execution store (scoped to the dataset) caching verification answers per (query, crop).
VERIFY_CACHE_STORE = "person_finder_verifications"
#: ``dataset.info`` key of the last search's record: the query, index and threshold behind the ``match`` labels.
LAST_SEARCH_INFO = "person_finder_last_search"

# --- live streams -----------------------------------------------------------------------------------
#: Execution store (scoped to the dataset) of a live job: its status, stop flag, watchlists and alerts.
LIVE_STORE = "person_finder_live"
LIVE_STATUS_KEY = "status"
LIVE_STOP_KEY = "stop"
LIVE_WATCHLISTS_KEY = "watchlists"
#: Segment numbers handed out so far (a number is never reused, even for a segment lost in a kill).
LIVE_NEXT_SEGMENT_KEY = "next_segment"
LIVE_GAPS_KEY = "gaps"
#: Prefix of the store key of each alert record (``alert:<segment>:<track>:<watchlist>``).
LIVE_ALERT_PREFIX = "alert:"
#: Sample fields of each segment: its number, the wall-clock time of its first / last frame, the stream gap
#: (seconds) just before it, and its alerts (``TemporalDetections``: label = watchlist, index = track id).
LIVE_SEGMENT_FIELD = "live_segment"
LIVE_START_FIELD = "live_started_at"
LIVE_END_FIELD = "live_ended_at"
LIVE_GAP_FIELD = "live_gap_before_s"
LIVE_ALERTS_FIELD = "live_alerts"
#: Saved view of the segments holding alerts.
LIVE_ALERTS_VIEW = "live_alerts"
#: Segment files: ``segment_000042.mp4``; a segment being encoded is ``segment_000042.part.mp4``.
LIVE_SEGMENT_NAME = "segment_{:06d}.mp4"
LIVE_PART_SUFFIX = ".part.mp4"

# --- model folders ----------------------------------------------------------------------------------
#: File next to a fine-tuned matcher's weights: base model, data provenance and the evaluation's
#: calibrated threshold (read by search as its default threshold).
MATCHER_INFO_FILE = "person_finder.json"
#: Key of that file holding how reliable the matcher's zero-shot attributes are, per attribute (see
#: core.attributes.zero_shot.attribute_reliability); every zero-shot run weighs its confidences by it.
ATTRIBUTE_RELIABILITY_KEY = "attribute_reliability"

# --- run records ----------------------------------------------------------------------------------
#: Where the FiftyOne run record of a generation / merge is stored.
ATTRIBUTES_RUN_KEY = "person_attributes"
#: Version of the prompt and schema; recorded in every run so results can be traced.
ATTRIBUTES_PROMPT_VERSION = "person-attributes-v1"
MERGE_RUN_KEY = "person_attributes_merge"
#: Run key of the last attribute audit (what the dataset card reports).
AUDIT_RUN_KEY = "person_attributes_audit"
#: Run keys of fine-tuning and evaluation records on the dataset.
TRAIN_RUN_KEY = "matcher_finetune"
EVAL_RUN_KEY = "matcher_eval"

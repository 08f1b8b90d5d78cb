"""Every default of Person Finder, in one place.

Operators read their form defaults from here and ``core`` functions use the
same names as keyword defaults, so the App, ``foo.execute_operator`` and
plain Python behave alike. Change a default here and every entry point
follows.
"""

PLUGIN_NAME = "@openset-reid/person-finder"
GEMINI_SECRET = "GEMINI_API_KEY"

# --- models ---------------------------------------------------------------
#: Image-text matcher: any Hugging Face SigLIP / SigLIP 2 / CLIP id or folder.
MATCHER_MODEL = "google/siglip-base-patch16-224"
#: SigLIP was trained on texts padded to this many tokens.
MATCHER_TEXT_TOKENS = 64
MATCHER_BATCH_SIZE = 32
#: Name of the zoo model (in this plugin's local model source) wrapping the matcher.
MATCHER_ZOO_MODEL = "person-finder-matcher"

#: Person detector: an Ultralytics weights name or a .pt / .onnx / .yaml path.
DETECTOR_MODEL = "yolo26n.pt"
DETECTOR_CONFIDENCE = 0.25
DETECTOR_IMAGE_SIZE = 640
DETECTOR_BATCH_SIZE = 8
#: COCO class id of "person".
PERSON_CLASS_ID = 0

#: Near-duplicate embedder (Hugging Face DINOv2 id or folder).
DEDUPE_MODEL = "facebook/dinov2-small"
DEDUPE_BATCH_SIZE = 32

#: Gemini model used for attributes and descriptions.
GEMINI_MODEL = "gemini-2.5-flash"

# --- fields of person-crop (ReID) datasets ----------------------------------
PERSON_ID_FIELD = "person_id"
CAMERA_ID_FIELD = "camera_id"
SPLIT_TAGS = ("train", "query", "gallery")
VAL_TAG = "val"
DISTRACTOR_TAG = "distractor"
ATTRIBUTES_FIELD = "attributes"
ATTRIBUTES_ERROR_FIELD = "attributes_error"
MERGED_ATTRIBUTES_FIELD = "merged_attributes"
AGREEMENT_FIELD = "attribute_agreement"
DESCRIPTION_FIELD = "description"

# --- fields of scene images and videos -----------------------------------
PERSONS_FIELD = "persons"
PERSON_LABEL = "person"
MATCH_LABEL = "match"
SIMILARITY_ATTR = "similarity"
PROBABILITY_ATTR = "probability"
SAMPLE_SIMILARITY_FIELD = "person_similarity"
VIDEO_MATCHES_FIELD = "person_matches"
PERSON_ERROR_FIELD = "person_search_error"

# --- search ----------------------------------------------------------------
PERSON_INDEX_KEY = "person_index"
#: Cosine similarity above which a person counts as a match (see README).
MATCH_THRESHOLD = 0.1
TOP_K = 25
VIDEO_DETECT_EVERY = 1
#: A track's embedding is refreshed every this many frames...
TRACK_REFRESH_FRAMES = 30
#: ... or when the IoU between its box now and its box at the last embedding drops below this.
TRACK_REFRESH_IOU = 0.5
TRACKER = "bytetrack"

# --- curation: Market-1501, hub, near-duplicates (issue 4) -------------------
#: Dict field of Market-1501's 27 original attribute codes (1 = no, 2 = yes; age 1-4).
MARKET_ATTRIBUTES_FIELD = "market_attributes"

# --- attributes and descriptions with Gemini, multi-view merge (issue 5) -----

# --- fine-tuning and evaluation (issue 6) ------------------------------------

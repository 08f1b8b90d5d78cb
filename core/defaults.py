"""Every default of Person Finder, in one place.

Operators read their form defaults from here and ``core`` functions use the
same names as keyword defaults, so the App, ``foo.execute_operator`` and
plain Python behave alike. Change a default here and every entry point
follows. Names of fields, tags and run keys (the data contract) are in
:mod:`core.contract`; runtime switches are at the end.
"""

# --- models ---------------------------------------------------------------
#: Image-text matcher: any Hugging Face SigLIP / SigLIP 2 / CLIP id or folder.
MATCHER_MODEL = "google/siglip-base-patch16-224"
#: SigLIP was trained on texts padded to this many tokens.
MATCHER_TEXT_TOKENS = 64
MATCHER_BATCH_SIZE = 32

#: Person detector: an Ultralytics weights name or a .pt / .onnx / .yaml path.
DETECTOR_MODEL = "yolo26n.pt"
#: Detector files accepted (from forms and the SDK alike). ``.pt`` checkpoints and ``.yaml`` configs go through
#: Ultralytics' restricted loader (``torch.load(weights_only=True)`` against its allow-list of model classes, no
#: ``eval`` of config strings), so a crafted file cannot run code; ``.onnx`` graphs hold no code.
DETECTOR_FILE_TYPES = (".pt", ".onnx", ".yaml", ".yml")
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

# --- search ----------------------------------------------------------------
#: Cosine similarity above which a person counts as a match (see README).
MATCH_THRESHOLD = 0.1
TOP_K = 25
VIDEO_DETECT_EVERY = 1
#: A track's embedding is refreshed every this many frames...
TRACK_REFRESH_FRAMES = 30
#: ... or when the shape IoU (boxes centred, so walking does not count) between its box now and its box
#: at the last embedding drops below this (entering the frame, occlusion, turning).
TRACK_REFRESH_IOU = 0.5
TRACKER = "bytetrack"
#: A given box (detections_field) that the tracker does not confirm is kept as a track of its own, numbered from here.
UNTRACKED_TRACK_ID = 1_000_000
#: The person index grows per finished video / image batch; writers (processes, delegated workers) take turns on
#: a lock document in this MongoDB collection, which also holds each index's version (bumped on every add).
INDEX_STATE_COLLECTION = "person_finder_index_state"
#: A writer waits at most this long for the lock, polling this often; a lock not released for
#: INDEX_LOCK_STALE_SECONDS (its holder was killed) is taken over.
INDEX_LOCK_TIMEOUT_SECONDS = 600
INDEX_LOCK_POLL_SECONDS = 0.05
INDEX_LOCK_STALE_SECONDS = 120
#: Frames of a video whose persons are written to the database in one bulk write (bounds the memory of long videos).
VIDEO_FRAMES_PER_WRITE = 1000
#: rank_persons on a vector backend (not sklearn) asks it for k x this many nearest crop embeddings (at least
#: RANK_MIN_CANDIDATES), then scores their samples' persons (videos: whole tracks) exactly.
RANK_CANDIDATES_PER_RESULT = 4
RANK_MIN_CANDIDATES = 100
#: Sample / frame updates sent to MongoDB in one bulk write when a search writes its scores back.
SCORE_WRITES_PER_BATCH = 1000
#: Trackers the video search accepts (Ultralytics' names).
TRACKERS = ("bytetrack", "botsort")
#: How a match threshold is given: a raw cosine or SigLIP's calibrated probability.
THRESHOLD_TYPES = ("cosine", "probability")
#: The same cut given as SigLIP's calibrated probability sigmoid(scale * cos + bias).
MATCH_PROBABILITY = 0.1
#: Colours of matches and of every other person: in exported drawings and in the App (saved color scheme).
MATCH_COLOR = "#ff0000"
OTHER_PERSON_COLOR = "#b0b0b0"

# --- curation: Market-1501, hub, near-duplicates --------------------------------
#: Seed of the validation split carved out of train by identity.
VAL_SPLIT_SEED = 0
#: Samples added to the database per batch during a Market-1501 import.
MARKET_IMPORT_BATCH = 500
#: Cosine distance (1 - cos) at or under which two crops are near-duplicates. A prior, not
#: measured here (no DINOv2 weights offline): check it against the histogram the dry run reports.
DEDUPE_THRESHOLD = 0.05
#: "identity": compare crops of the same person_id only; "global": compare all crops.
DEDUPE_SCOPES = ("identity", "global")
DEDUPE_SCOPE = "identity"
#: Near-duplicates across two of these groups of split tags are leaks (query vs gallery is by design).
LEAKAGE_SPLIT_GROUPS = (("train",), ("val",), ("query", "gallery"))
#: Nearest-neighbour distance histogram reported by the dry run: bins over [0, max], plus an overflow count.
DISTANCE_HISTOGRAM_MAX = 0.5
DISTANCE_HISTOGRAM_BINS = 25
#: Memory (MB) for one block of the chunked distance computation; bounds peak memory of the search.
DEDUPE_WORKING_MEMORY_MB = 64

# --- attributes and descriptions with Gemini, multi-view merge -----
#: "gemini" (needs GEMINI_API_KEY) or "zero-shot" (the image-text matcher, offline).
ATTRIBUTES_PROVIDER = "gemini"
#: Views per Gemini call: 1 = per view; N > 1 = up to N views of one identity in one call.
GEMINI_VIEWS_PER_CALL = 1
GEMINI_CONCURRENCY = 8
#: Client-side cap; Gemini Flash paid tier 1 allows 1000 requests per minute. 0 = no cap.
GEMINI_REQUESTS_PER_MINUTE = 1000
#: Requests are paced at this fraction of the cap, leaving room for clock jitter (no 429s at the limit).
GEMINI_RPM_HEADROOM = 0.95
#: Attempts per call (first try included) on 429 / 5xx / timeouts / malformed answers.
GEMINI_MAX_ATTEMPTS = 6
#: Exponential backoff with jitter: first delay, cap (seconds).
GEMINI_BACKOFF_INITIAL_S = 1.0
GEMINI_BACKOFF_MAX_S = 60.0
#: Deadline of one Gemini request, whole answer included (a server trickling bytes cannot hold a call longer).
GEMINI_TIMEOUT_S = 60.0
#: Largest Gemini answer accepted (bytes of the HTTP body); one person's record is about 1 KB. A larger answer
#: is cut off while downloading and becomes that sample's error (MongoDB also refuses documents over 16 MB).
GEMINI_MAX_ANSWER_BYTES = 1_000_000
GEMINI_TEMPERATURE = 0.0
#: Results are written to the dataset every this many finished samples.
ATTRIBUTES_CHUNK_SIZE = 32
#: Rough tokens of one answer, for dry-run estimates; an image costs 258 tokens.
GEMINI_OUTPUT_TOKENS_ESTIMATE = 250
GEMINI_IMAGE_TOKENS = 258
#: Sensitive attributes (ethnicity) are only requested on explicit opt-in.
INCLUDE_SENSITIVE_ATTRIBUTES = False
#: Multi-view merge: an accessory is present when at least this many views see it (or all views, if fewer).
ACCESSORY_MIN_VIEWS = 2
#: Zero-shot provider: a value whose probability (times the attribute's measured reliability) is below this
#: becomes "unknown".
ZERO_SHOT_MIN_CONFIDENCE = 0.3
#: Zero-shot reliability is measured only for attributes known on at least this many labelled images.
ZERO_SHOT_RELIABILITY_MIN_LABELLED = 10
#: evaluate_matchers measures it on at most this many labelled images (a seeded sample of larger splits).
ZERO_SHOT_RELIABILITY_MAX_IMAGES = 2000

#: Attributes of indexed persons are merged per "track" (video + track id; each person of an image alone) or per
#: "identity" (after link_identities).
PERSON_ATTRIBUTE_GROUPS = ("track", "identity")
PERSON_ATTRIBUTE_GROUP = "track"

# --- attribute-aware search: query parsing, fusion, verification -------
#: How a text query becomes attribute constraints: "auto" (Gemini when a key is set, else offline), "offline"
#: (the schema's own vocabulary), "gemini" (structured output).
QUERY_PARSERS = ("auto", "offline", "gemini")
QUERY_PARSER = "auto"
#: Share of the fused score given to the attributes: (1 - w) x similarity (min-max over the ranked people) +
#: w x how well the merged attributes satisfy the constraints (mapped to [0, 1]).
ATTRIBUTE_WEIGHT = 0.6
#: Fusion reads the merged attributes of at most this many ranked people by their label ids; more are read in
#: one pass over the persons field.
ATTRIBUTE_LOOKUP_BY_ID_MAX = 2000
#: Gemini verification of the top results: how many, and how a verdict moves the fused score.
VERIFY_TOP_K = 10
VERIFY_BONUS = {"yes": 1.0, "unsure": 0.0, "no": -1.0}
#: Rough tokens of one verification answer (a verdict and a field name), for the estimate before running.
VERIFY_OUTPUT_TOKENS_ESTIMATE = 30
#: Price per million tokens (USD) used by cost estimates: input, output (Gemini 2.5 Flash list prices).
GEMINI_PRICE_PER_MILLION = {"input": 0.30, "output": 2.50}

# --- fine-tuning and evaluation ------------------------------------
#: Matcher fine-tuning (``core.training``): epochs, batch, optimiser, schedule.
TRAIN_EPOCHS = 10
TRAIN_BATCH_SIZE = 32
#: Learning rates for full fine-tuning and for LoRA adapters.
TRAIN_LEARNING_RATE = 1e-5
TRAIN_LORA_LEARNING_RATE = 1e-4
TRAIN_WEIGHT_DECAY = 0.01
TRAIN_WARMUP_FRACTION = 0.1
#: "sigmoid" (SigLIP, identity-aware positives) or "infonce" (symmetric, as the prototype).
TRAIN_LOSS = "sigmoid"
TRAIN_LOSSES = ("sigmoid", "infonce")
#: "full" fine-tuning or "lora" (peft adapters, merged into the saved model).
TRAIN_MODE = "full"
TRAIN_MODES = ("full", "lora")
LORA_RANK = 16
LORA_ALPHA = 32
LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "out_proj")
#: Fraction of the training identities held out for validation (early stopping on its mAP).
TRAIN_VAL_FRACTION = 0.2
#: Stop after this many epochs without a better validation mAP.
TRAIN_PATIENCE = 3
TRAIN_SEED = 0
#: "auto" = bf16 (or fp16) on a GPU, none on CPU; or "no" / "fp16" / "bf16".
TRAIN_MIXED_PRECISION = "auto"
TRAIN_MIN_IDENTITIES = 2
#: Data-loading worker processes when training on a GPU (on CPU the loop loads data itself).
TRAIN_GPU_WORKERS = 4
#: CMC ranks reported by the evaluation.
EVAL_RANKS = (1, 5, 10)
#: Points kept of each model's precision-recall curve in the stored evaluation (the App's plot).
EVAL_PR_CURVE_POINTS = 50
#: Calibration picks the lowest score whose precision on held-out data reaches this.
CALIBRATION_TARGET_PRECISION = 0.9

# --- scale: vector backends, ONNX exports --------------------------------------
#: Vector backend of person indexes (FiftyOne brain similarity backends).
INDEX_BACKEND = "sklearn"
#: Primary keys per page when the ids a Milvus index holds are read (the index repair at each run's start).
MILVUS_ID_PAGE = 10_000
#: pgvector HNSW candidate list per query (its maximum); an HNSW query returns at most this many rows, and
#: ``rank_persons`` asks for ``k x RANK_CANDIDATES_PER_RESULT`` (at least RANK_MIN_CANDIDATES).
PGVECTOR_HNSW_EF_SEARCH = 1000
INDEX_BACKENDS = ("sklearn", "lancedb", "qdrant", "milvus", "pgvector")
#: Brain-config parameter that says where each backend keeps its index (None: in MongoDB with the dataset).
#: Every process (App, SDK, workers) reads it from FIFTYONE_BRAIN_SIMILARITY_<BACKEND>_<PARAMETER>.
INDEX_BACKEND_LOCATIONS = {"sklearn": None, "lancedb": "uri", "qdrant": "url", "milvus": "uri",
                           "pgvector": "connection_string"}
#: pip package each backend needs.
INDEX_BACKEND_PACKAGES = {"lancedb": "lancedb", "qdrant": "qdrant-client", "milvus": "pymilvus",
                          "pgvector": "psycopg2-binary"}
#: LanceDB tables of at least this many vectors get an approximate (IVF-SQ) index after a build;
#: smaller ones are scanned exactly (fast enough, recall 1). See bench/gallery.py.
LANCEDB_ANN_MIN_ROWS = 50_000
#: Vectors per IVF partition of that index (LanceDB probes 20 partitions per query by default).
LANCEDB_ROWS_PER_PARTITION = 4096
#: ONNX exports are cached here (None: "<fiftyone model zoo dir>/person-finder-onnx").
ONNX_CACHE_DIR = None
ONNX_OPSET = 17
#: Stated agreement of the ONNX path with PyTorch: max |difference| of unit embedding components,
#: of box corners (pixels) and of detection confidences. Checked by tests/test_scale_onnx.py.
ONNX_EMBEDDING_TOLERANCE = 1e-4
ONNX_BOX_TOLERANCE_PX = 0.5
ONNX_SCORE_TOLERANCE = 1e-3

# --- identities: tracks linked across videos and cameras --------------------
#: Two groups of tracks join into one identity when their mean image embeddings are at least this similar (cosine).
IDENTITY_LINK_THRESHOLD = 0.7
#: Candidate pairs per track: its this-many most similar tracks (memory grows with tracks x this).
IDENTITY_LINK_NEIGHBORS = 20
#: Re-identification datasets exported from footage: share of multi-camera identities in query / gallery, seed.
REID_TEST_FRACTION = 0.5
REID_SPLIT_SEED = 0

# --- ranked-results panel ------------------------------------------
#: Recent queries kept per dataset (newest first, duplicates moved to the front).
PANEL_RECENT_QUERIES = 10
#: Largest k the panel offers (each result carries a crop thumbnail).
PANEL_MAX_K = 100
#: Height in pixels of the crop thumbnails (JPEG data URLs sent as panel data, not state).
PANEL_CROP_HEIGHT = 128
PANEL_CROP_QUALITY = 85
#: Bins of the score histogram.
PANEL_HISTOGRAM_BINS = 30
#: Delegated indexing jobs the panel reports (newest first), so a scheduled or failed job is never invisible.
PANEL_RECENT_JOBS = 2
#: Decimals the panel shows for scores and the threshold slider.
PANEL_SCORE_DECIMALS = 3

# --- runtime switches: which engine runs the models ------------------------------
#: Inference runtime of the detector and the matcher's image tower: "torch" or "onnx" (ONNX Runtime).
INFERENCE_RUNTIME = "torch"
INFERENCE_RUNTIMES = ("torch", "onnx")
#: Engine of text queries on CPU: "onnx" (the text tower exported once, int8 weights; several times
#: faster per query than PyTorch on a CPU, see README "ONNX Runtime inference") or "torch".
#: On a GPU queries always use PyTorch.
QUERY_RUNTIME = "onnx"
ONNX_TEXT_INT8 = True
#: Stated agreement of the int8 text tower with PyTorch: cosine of the two embeddings of a query.
ONNX_TEXT_MIN_COSINE = 0.99

# --- live streams: segments, reconnects, watchlists -------------------------------
#: A live stream is cut into video samples of this many seconds (a gap or a change of picture size cuts early).
LIVE_SEGMENT_SECONDS = 60.0
#: Frame rate assumed when the stream does not say (some raw / MJPEG sources).
LIVE_FALLBACK_FPS = 30.0
#: Decoded frames waiting between the reader thread and detection (bounds memory: 64 x 2.7 MB at 720p).
LIVE_FRAME_QUEUE = 64
#: Frames a live job detects in one batch: small, so a person is seen (and alerted on) soon after arriving.
LIVE_DETECT_BATCH = 4
#: A live job with more decoded frames than this waiting (it is behind the stream) skips detection on the frames
#: it takes until it has caught up (they are still saved in the segment): alerts stay near real time.
LIVE_BACKLOG_FRAMES = 15
#: A stream that sends no frame for this long is stalled: the gap is recorded and the reader reconnects.
LIVE_STALL_SECONDS = 5.0
#: Opening a stream waits at most this long.
LIVE_OPEN_TIMEOUT_SECONDS = 10.0
#: Reconnects back off exponentially from the first delay to the cap (seconds).
LIVE_RECONNECT_INITIAL_S = 0.5
LIVE_RECONNECT_MAX_S = 30.0
#: A job stops after this long without a frame (None: retries for ever, a camera may come back tomorrow).
LIVE_GIVE_UP_SECONDS = None
#: The job reads its stop flag and the watchlists, and writes its status, this often (seconds).
LIVE_POLL_SECONDS = 1.0
#: Segments are encoded H.264 (what the App plays) with these x264 settings: ultrafast leaves the CPU to the models.
LIVE_X264_PRESET = "ultrafast"
LIVE_X264_CRF = 23
#: Finished segments waiting to be written to the dataset (their frames are already encoded on disk).
LIVE_SEGMENT_QUEUE = 2
#: CPU precision of the detector and the image tower: "auto" (bf16 autocast where /proc/cpuinfo has
#: avx512_bf16 or amx_bf16, else fp32), "fp32" or "bf16". On a GPU "auto" is bf16 too.
LIVE_PRECISION = "auto"
LIVE_PRECISIONS = ("auto", "fp32", "bf16")
#: Watchlist match threshold (cosine) when a watchlist gives none: the search's default.
WATCHLIST_THRESHOLD = MATCH_THRESHOLD
#: Alert webhooks: POSTed by a background thread from a bounded queue (a full queue drops and counts),
#: each request given this long.
WEBHOOK_TIMEOUT_S = 5.0
WEBHOOK_QUEUE = 100
#: Height (pixels) of the JPEG crop saved with each alert.
ALERT_CROP_HEIGHT = 256
#: Latest alerts shown by the status command and operator.
LIVE_STATUS_ALERTS = 20

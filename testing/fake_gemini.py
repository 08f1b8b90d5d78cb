"""A fake Gemini server on 127.0.0.1 speaking the ``generateContent`` REST API.

The real ``google-genai`` client talks to it through
``HttpOptions(base_url=fake.base_url)``. It answers with canned attributes per
image (keyed by the SHA-1 of the image bytes), injects faults on request
(429 / 500 / 503 / 400 / 403 / 404, hangs past the client timeout, malformed
JSON, empty candidates, safety blocks; and, as a hostile or broken server
would: a valid but oversized answer, a body trickled one byte at a time, an
HTML page, a JSON body cut short, a malformed usage block), can enforce a
requests-per-minute limit, adds latency, and records every request it saw.

Example::

    with FakeGemini(latency=0.3) as fake:
        fake.faults["*"] = ["429", "500"]          # the next two requests fail
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.base_url))
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = re.compile(r"^/(v1|v1beta|v1alpha)/models/([^/:]+):generateContent$")

ERROR_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}

DEFAULT_ANSWER = {
    "gender": "unknown", "age_group": "adult", "hair_length": "short", "upper_type": "t-shirt",
    "sleeve_length": "short", "upper_colors": ["blue"], "lower_type": "trousers", "lower_length": "long",
    "lower_colors": ["black"], "shoes": "sneakers", "shoe_color": "black", "hat": "no", "glasses": "no",
    "backpack": "no", "backpack_color": "unknown", "handbag": "no", "handbag_color": "unknown",
    "shoulder_bag": "no", "shoulder_bag_color": "unknown", "other_accessories": [], "posture": "standing",
    "action": "walking", "description": "a person in a blue t-shirt and black trousers",
}

#: A key-shaped test secret: tests check it never reaches a dataset, a run record or a log.
TEST_API_KEY = "AIzaTEST-secret-key-0123456789"
#: Client settings that keep retry tests fast: short backoff, three attempts, a 5 s deadline.
FAST_CLIENT = dict(api_key=TEST_API_KEY, backoff_initial_s=0.02, max_attempts=3, timeout_s=5.0)


def image_key(data):
    """The key under which answers and faults for an image are looked up."""
    return hashlib.sha1(data).hexdigest()


class FakeGemini:
    """Threaded fake server; use as a context manager or call start()/stop()."""

    def __init__(self, latency=0.0, rpm_limit=None, window_s=60.0, hang_s=3.0, huge_bytes=17_000_000,
                 trickle_s=0.2):
        self.latency = latency
        self.rpm_limit = rpm_limit
        self.window_s = window_s
        self.hang_s = hang_s
        self.huge_bytes = huge_bytes  # size of the "huge" answer's description
        self.trickle_s = trickle_s  # pause between the bytes of a "trickle" answer
        self.answers = {}  # image key -> dict
        #: Optional ``responder(image keys, prompt text) -> answer dict or None`` (None: the usual answer), for
        #: prompts other than attributes: query parsing, verification.
        self.responder = None
        self.faults = collections.defaultdict(list)  # image key or "*" -> list of fault names, consumed in order
        self.requests = []  # dicts: time, path, headers, body, status, images
        self.lock = threading.Lock()
        self._accepted = collections.deque()
        self._server = None

    # --- lifecycle ---------------------------------------------------------
    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, payload = fake._handle(self.path, dict(self.headers), body)
                if payload is None:
                    return
                content_type, trickle = "application/json", False
                if isinstance(payload, tuple):  # (bytes, content type, trickle)
                    payload, content_type, trickle = payload
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if not trickle:
                        self.wfile.write(data)
                        return
                    for i in range(len(data)):
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                        time.sleep(fake.trickle_s)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def base_url(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- statistics --------------------------------------------------------
    def count(self, status=None):
        with self.lock:
            return sum(1 for r in self.requests if status is None or r["status"] == status)

    def statuses(self):
        with self.lock:
            return collections.Counter(r["status"] for r in self.requests)

    # --- request handling --------------------------------------------------
    def _handle(self, path, headers, body):
        started = time.time()
        record = {"time": started, "path": path, "headers": headers, "body": body, "status": None}
        with self.lock:
            self.requests.append(record)
        match = PATH.match(path.split("?")[0])
        if not match:
            return self._finish(record, 404, _error(404, f"unknown path {path}"))
        request = json.loads(body or b"{}")
        images = [_b64(p["inlineData"]["data"])
                  for c in request.get("contents", []) for p in c.get("parts", []) if "inlineData" in p]
        text = " ".join(p.get("text", "") for c in request.get("contents", []) for p in c.get("parts", []))
        record["images"] = [image_key(i) for i in images]
        fault = self._next_fault(record["images"])
        if fault is None and self.rpm_limit:
            with self.lock:
                while self._accepted and self._accepted[0] <= started - self.window_s:
                    self._accepted.popleft()
                if len(self._accepted) >= self.rpm_limit:
                    fault = "429"
                else:
                    self._accepted.append(started)
        if self.latency:
            time.sleep(self.latency)
        if fault == "timeout":
            time.sleep(self.hang_s)
            return self._finish(record, 504, None)
        if fault and fault.isdigit():
            return self._finish(record, int(fault), _error(int(fault), "injected"))
        usage = {"promptTokenCount": 258 * len(images) + len(text) // 4, "candidatesTokenCount": 120}
        usage["totalTokenCount"] = usage["promptTokenCount"] + usage["candidatesTokenCount"]
        if fault == "empty":
            return self._finish(record, 200, {"candidates": [], "usageMetadata": usage})
        if fault == "safety":
            return self._finish(record, 200, {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage})
        if fault == "finish_safety":
            return self._finish(record, 200, {"candidates": [{"finishReason": "SAFETY", "index": 0}],
                                              "usageMetadata": usage})
        if fault == "html":
            return self._finish(record, 200, (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html",
                                              False))
        if fault == "bad_usage":
            usage = {"promptTokenCount": "a lot", "candidatesTokenCount": [1, 2]}
        if fault == "malformed":
            answer_text = '{"gender": "male", "upper_colors": ["bl'
        elif fault == "huge":
            answer_text = json.dumps({**DEFAULT_ANSWER, "description": "a" * self.huge_bytes})
        else:
            answer = self.responder(record["images"], text) if self.responder else None
            if answer is None and images:
                answer = self.answers.get(record["images"][0], DEFAULT_ANSWER)
            elif answer is None:  # a description rewrite: echo the facts
                answer = {"description": "rewritten: " + text.split("Facts: ")[-1].split("\n")[0]}
            answer_text = json.dumps(answer)
        payload = {
            "candidates": [{"content": {"role": "model", "parts": [{"text": answer_text}]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage, "modelVersion": match.group(2),
        }
        if fault == "truncated":
            data = json.dumps(payload).encode()
            return self._finish(record, 200, (data[:len(data) // 2], "application/json", False))
        if fault == "trickle":
            return self._finish(record, 200, (json.dumps(payload).encode(), "application/json", True))
        return self._finish(record, 200, payload)

    def _next_fault(self, keys):
        with self.lock:
            for key in list(keys) + ["*"]:
                if self.faults.get(key):
                    return self.faults[key].pop(0)
        return None

    def _finish(self, record, status, payload):
        record["status"] = status
        return status, payload


def _b64(text):
    """google-genai sends URL-safe base64, sometimes unpadded."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _error(code, message):
    return {"error": {"code": code, "message": message, "status": ERROR_STATUS.get(code, "UNKNOWN")}}


def spec_answer(spec):
    """What a perfect model would answer for a synthetic ``PersonSpec`` (agrees with its Market attributes)."""
    answer = dict(DEFAULT_ANSWER)
    answer.update({
        "gender": spec.gender, "age_group": "teenager", "hair_length": "long" if spec.long_hair else "short",
        "upper_type": "shirt" if spec.long_sleeves else "t-shirt",
        "sleeve_length": "long" if spec.long_sleeves else "short", "upper_colors": [spec.upper_color],
        "lower_type": "skirt" if spec.skirt else ("trousers" if spec.long_lower else "shorts"),
        "lower_length": "long" if spec.long_lower else "short", "lower_colors": [spec.lower_color],
        "hat": "yes" if spec.hat else "no",
    })
    for kind, name in (("backpack", "backpack"), ("handbag", "handbag"), ("shoulder bag", "shoulder_bag")):
        answer[name] = "yes" if spec.bag == kind else "no"
        answer[name + "_color"] = spec.bag_color if spec.bag == kind else "unknown"
    from person_finder.testing.synthetic import describe

    answer["description"] = describe(spec)
    return answer


def add_people(dataset, folder, specs, views=3, seed=0):
    """Add ``views`` synthetic crops per spec (person_id = index, Market ground truth attached).

    Returns ``{image key: spec}`` so a :class:`FakeGemini` can answer per image.
    """
    import os

    import fiftyone as fo

    from person_finder.testing import synthetic

    os.makedirs(folder, exist_ok=True)
    samples, keys = [], {}
    for pid, spec in enumerate(specs):
        for v in range(views):
            path = os.path.join(folder, f"{pid:04d}_c{v + 1}s1_{seed:06d}_01.jpg")
            synthetic.render_crop(spec, seed=seed * 1000 + pid * 10 + v).save(path, quality=95)
            with open(path, "rb") as f:
                keys[image_key(f.read())] = spec
            samples.append(fo.Sample(filepath=path, person_id=pid, camera_id=v + 1,
                                     market_attributes=synthetic.market_attributes(spec)))
    dataset.add_samples(samples)
    return keys

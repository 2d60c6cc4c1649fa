"""An in-process fake of the Vertex AI REST API, for driving the *real* google-genai client in tests.

It speaks the wire protocol google-genai's Vertex client uses (checked against google-genai 3.x):

- ``POST /v1beta1/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent``
- ``POST .../models/{model}:streamGenerateContent?alt=sse`` (Server-Sent Events, chunked)
- ``POST .../models/{model}:predict`` (text embeddings: ``text-embedding-*`` models)
- ``POST .../models/{model}:embedContent`` / ``:batchEmbedContents`` (``gemini-embedding-*`` models)

Point a client at it with ``HttpOptions(base_url=fake.base_url)`` plus ``project``/``location`` and
credentials that need no network (``google.oauth2.credentials.Credentials(token="test")``).

Every request is recorded (``fake.requests``) with its parsed JSON body, so tests can assert what was
sent. Replies are scripted per action with :meth:`FakeVertex.script`; an action with nothing scripted
gets a sensible default (a short text answer, or deterministic embeddings). Faults are plain replies::

    with FakeVertex() as fake:
        fake.script("generateContent", rate_limited(retry_after=2), text_reply("hello"))
        ...  # first call gets 429 + Retry-After: 2, the retry gets "hello"
        assert fake.requests[-1].body["contents"][0]["parts"][0]["text"] == "hi"

As a pytest fixture::

    @pytest.fixture
    def fake_vertex():
        with FakeVertex() as fake:
            yield fake

Slow replies wait on an event that :meth:`stop` sets, so the server never leaves a thread behind.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import numpy as np

_PATH = re.compile(
    r"^/(?P<version>v1[a-z0-9]*)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+):(?P<action>[A-Za-z]+)$"
)

HANDLER_THREAD_NAME = "fake-vertex-handler"
SERVER_THREAD_NAME = "fake-vertex-server"
ACTIONS = ("generateContent", "streamGenerateContent", "predict", "embedContent", "batchEmbedContents")


# --- replies ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP reply.

    ``body`` is JSON-encoded unless it is ``bytes`` (sent raw, e.g. malformed JSON). ``delay`` seconds
    pass before the status line is written (a slow backend). For streams, ``chunks`` are sent as SSE
    events, ``chunk_delay`` apart; ``cut_after`` drops the connection after that many chunks without
    ending the chunked body (a stream cut in the middle).
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunks: list[dict[str, Any]] | None = None
    chunk_delay: float = 0.0
    cut_after: int | None = None


def usage(prompt: int = 12, output: int = 5) -> dict[str, int]:
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": output,
        "totalTokenCount": prompt + output,
    }


_SAFE_RATINGS = [
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE", "probabilityScore": 0.02},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE", "probabilityScore": 0.01},
]


def response_body(
    text: str,
    *,
    finish_reason: str = "STOP",
    prompt_tokens: int = 12,
    output_tokens: int = 5,
    safety_ratings: list[dict[str, Any]] | None = None,
    model_version: str = "gemini-2.5-flash-001",
) -> dict[str, Any]:
    """A generateContent response body shaped like Vertex AI's."""
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": finish_reason,
                "safetyRatings": _SAFE_RATINGS if safety_ratings is None else safety_ratings,
                "avgLogprobs": -0.12,
            }
        ],
        "usageMetadata": usage(prompt_tokens, output_tokens),
        "modelVersion": model_version,
        "createTime": "2026-01-01T00:00:00.000000Z",
        "responseId": "fake-response",
    }


def text_reply(text: str, **kwargs: Any) -> Reply:
    return Reply(body=response_body(text, **kwargs))


def json_reply(payload: Any, **kwargs: Any) -> Reply:
    """A model answer whose text is ``payload`` as JSON (controlled generation)."""
    return text_reply(json.dumps(payload), **kwargs)


def stream_reply(
    pieces: list[str],
    *,
    prompt_tokens: int = 12,
    output_tokens: int = 5,
    finish_reason: str = "STOP",
    chunk_delay: float = 0.0,
    cut_after: int | None = None,
) -> Reply:
    """An SSE stream: one chunk per piece; the last carries finishReason and usageMetadata."""
    chunks: list[dict[str, Any]] = []
    for i, piece in enumerate(pieces):
        chunk: dict[str, Any] = {
            "candidates": [{"content": {"role": "model", "parts": [{"text": piece}]}}],
            "modelVersion": "gemini-2.5-flash-001",
        }
        if i == len(pieces) - 1:
            chunk["candidates"][0]["finishReason"] = finish_reason
            chunk["candidates"][0]["safetyRatings"] = _SAFE_RATINGS
            chunk["usageMetadata"] = usage(prompt_tokens, output_tokens)
        chunks.append(chunk)
    return Reply(chunks=chunks, chunk_delay=chunk_delay, cut_after=cut_after)


def error_reply(status: int, message: str, grpc_status: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status=status,
        body={"error": {"code": status, "message": message, "status": grpc_status}},
        headers=headers or {},
    )


def rate_limited(retry_after: float | None = None) -> Reply:
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    return error_reply(429, "Resource exhausted. Please try again later.", "RESOURCE_EXHAUSTED", headers)


def server_error(status: int = 500) -> Reply:
    grpc = {500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}.get(status, "INTERNAL")
    return error_reply(status, "Internal error encountered.", grpc)


def slow(reply: Reply, delay: float) -> Reply:
    return Reply(**{**reply.__dict__, "delay": delay})


def malformed_json() -> Reply:
    return Reply(body=b'{"candidates": [{"content": {"parts": [{"text": "unterminated')


def prompt_blocked(reason: str = "SAFETY") -> Reply:
    """The prompt itself was blocked: no candidates, promptFeedback.blockReason set."""
    return Reply(
        body={
            "promptFeedback": {
                "blockReason": reason,
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}
                ],
            },
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
            "modelVersion": "gemini-2.5-flash-001",
        }
    )


def safety_stop() -> Reply:
    """The answer was stopped for safety: finishReason SAFETY, no text."""
    return Reply(
        body={
            "candidates": [
                {
                    "finishReason": "SAFETY",
                    "safetyRatings": [
                        {
                            "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                            "probability": "HIGH",
                            "probabilityScore": 0.97,
                            "blocked": True,
                        }
                    ],
                }
            ],
            "usageMetadata": {"promptTokenCount": 11, "totalTokenCount": 11},
            "modelVersion": "gemini-2.5-flash-001",
        }
    )


def fake_embedding(text: str, dims: int = 768) -> list[float]:
    """Deterministic unit vector per text (so tests can check order and normalisation)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vec = np.random.default_rng(seed).standard_normal(dims)
    # Deliberately *not* normalised: the client must normalise.
    return [float(x) for x in vec * 3.0]


# --- recorded requests -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    model: str
    action: str
    project: str
    location: str
    version: str
    headers: dict[str, str]
    body: Any


# --- embedding request limits (https://cloud.google.com/vertex-ai/generative-ai/docs/embeddings/get-text-embeddings)

# "gemini-embedding-001 ... up to 3072" dimensions, text-embedding-005 "up to 768"; each returns
# its full width unless outputDimensionality asks for fewer.
NATIVE_EMBEDDING_DIMS = {"gemini-embedding-001": 3072, "text-embedding-005": 768}
# "Note that gemini-embedding-001 supports one instance per request."
SINGLE_INSTANCE_MODELS = frozenset({"gemini-embedding-001"})
# "For each request, you're limited to 250 input texts" / "The API has a maximum input token
# limit of 20,000. Inputs exceeding this limit result in a 400 error."
MAX_TEXTS_PER_REQUEST = 250
MAX_TOKENS_PER_REQUEST = 20_000


def fake_token_count(text: str) -> int:
    """The fake's tokenizer: one token per whitespace-separated word (a real one yields more)."""
    return max(1, len(text.split()))


def _embedding_limit_error(req: RecordedRequest) -> Reply | None:
    body = req.body or {}
    if req.action == "predict":
        texts = [i.get("content", "") for i in body.get("instances", [])]
    elif req.action == "batchEmbedContents":
        texts = [_content_text(r.get("content")) for r in body.get("requests", [])]
    else:
        return None
    if req.model in SINGLE_INSTANCE_MODELS and len(texts) > 1:
        return error_reply(400, f"{req.model} supports one instance per request", "INVALID_ARGUMENT")
    if len(texts) > MAX_TEXTS_PER_REQUEST:
        return error_reply(400, f"at most {MAX_TEXTS_PER_REQUEST} instances per request", "INVALID_ARGUMENT")
    tokens = sum(fake_token_count(t) for t in texts)
    if tokens > MAX_TOKENS_PER_REQUEST:
        return error_reply(
            400, f"{tokens} input tokens exceed the limit of {MAX_TOKENS_PER_REQUEST}", "INVALID_ARGUMENT"
        )
    return None


# --- thinking (https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/thinking) -------

# Gemini 3+ take thinkingLevel (per-model values); Gemini 2.5 take thinkingBudget (per-model ranges,
# -1 dynamic); "settings are mutually exclusive": a request with both is refused.
THINKING_LEVELS = {
    "gemini-3.8-flash": {"LOW", "MEDIUM", "HIGH"},
    "gemini-3.7-flash": {"LOW", "MEDIUM", "HIGH"},
    "gemini-3.6-flash": {"MINIMAL", "LOW", "MEDIUM", "HIGH"},
    "gemini-3.5-flash-lite": {"MINIMAL", "LOW", "MEDIUM", "HIGH"},
}
# (least budget with thinking on, most, whether 0 turns thinking off)
THINKING_BUDGETS = {
    "gemini-2.5-pro": (128, 32_768, False),
    "gemini-2.5-flash": (1, 24_576, True),
    "gemini-2.5-flash-lite": (512, 24_576, True),
}


def proto_json_keys(obj: Any) -> Any:
    """Field names as Vertex's JSON parser reads them: "Parsers accept both the lowerCamelCase name
    ... and the original proto field name" (https://protobuf.dev/programming-guides/proto3/#json).
    google-genai sends some nested fields (thinkingConfig's) under their proto names."""
    if isinstance(obj, dict):
        return {
            re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): proto_json_keys(v) for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [proto_json_keys(v) for v in obj]
    return obj


def _thinking_error(req: RecordedRequest) -> Reply | None:
    if req.action not in ("generateContent", "streamGenerateContent"):
        return None
    thinking = proto_json_keys(((req.body or {}).get("generationConfig") or {}).get("thinkingConfig") or {})
    level, budget = thinking.get("thinkingLevel"), thinking.get("thinkingBudget")
    if level is not None and budget is not None:
        return error_reply(400, "thinking_level and thinking_budget cannot both be set", "INVALID_ARGUMENT")
    model = req.model.removesuffix("-001")
    if level is not None:
        if model.startswith("gemini-2."):
            return error_reply(400, f"{model} does not support thinking_level", "INVALID_ARGUMENT")
        if model in THINKING_LEVELS and level not in THINKING_LEVELS[model]:
            return error_reply(400, f"thinking_level {level} is not supported by {model}", "INVALID_ARGUMENT")
    if budget is not None and model in THINKING_BUDGETS and budget != -1:
        low, high, can_turn_off = THINKING_BUDGETS[model]
        if not (low <= budget <= high or (budget == 0 and can_turn_off)):
            return error_reply(
                400, f"thinking_budget {budget} is out of range for {model}", "INVALID_ARGUMENT"
            )
    return None


# --- server ----------------------------------------------------------------------------------------


class FakeVertex:
    """In-process fake Vertex AI endpoint on 127.0.0.1 (random free port). See module docstring."""

    def __init__(self, *, embedding_dims: int | None = None) -> None:
        # None: each model's documented native width (NATIVE_EMBEDDING_DIMS); a request's
        # outputDimensionality always wins, as on Vertex.
        self.embedding_dims = embedding_dims
        self.requests: list[RecordedRequest] = []
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._responder: Callable[[RecordedRequest], Reply | None] | None = None
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> FakeVertex:
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # Joined on close, so stop() proves no handler thread is left running.
        self._server.daemon_threads = False
        self._server.block_on_close = True
        self._release.clear()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=SERVER_THREAD_NAME
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # wake any slow reply still waiting
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeVertex:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeVertex is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    # scripting
    def script(self, action: str, *replies: Reply) -> None:
        """Queue replies for an action (one of ``ACTIONS``); they are used first in, first out."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")
        with self._lock:
            self._scripts[action].extend(replies)

    def respond_with(self, responder: Callable[[RecordedRequest], Reply | None] | None) -> None:
        """Answer by request content when nothing is scripted for the action (concurrent callers,
        e.g. agents running in parallel, make FIFO scripts ambiguous). ``None`` → the default reply."""
        self._responder = responder

    def pending(self, action: str) -> int:
        with self._lock:
            return len(self._scripts[action])

    def release_slow_replies(self) -> None:
        """Let slow replies finish now (they otherwise wait out their delay)."""
        self._release.set()

    def calls(self, action: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if action is None or r.action == action]

    # internals used by the handler
    def _record_and_pick(self, req: RecordedRequest) -> Reply:
        refused = _thinking_error(req)  # refused before any scripted reply, as Vertex would
        with self._lock:
            self.requests.append(req)
            if refused is not None:
                return refused
            queue = self._scripts[req.action]
            if queue:
                return queue.popleft()
            responder = self._responder
        if responder is not None:
            reply = responder(req)
            if reply is not None:
                return reply
        return self._default_reply(req)

    def _dims(self, model: str, requested: Any) -> int:
        if requested:
            return int(requested)
        return self.embedding_dims or NATIVE_EMBEDDING_DIMS.get(model, 768)

    def _default_reply(self, req: RecordedRequest) -> Reply:
        refused = _embedding_limit_error(req)
        if refused is not None:
            return refused
        if req.action == "predict":
            instances = (req.body or {}).get("instances", [])
            dims = self._dims(
                req.model, ((req.body or {}).get("parameters") or {}).get("outputDimensionality")
            )
            predictions = [
                {
                    "embeddings": {
                        "values": fake_embedding(inst.get("content", ""), dims),
                        "statistics": {
                            "token_count": max(1, len(inst.get("content", "")) // 4),
                            "truncated": False,
                        },
                    }
                }
                for inst in instances
            ]
            return Reply(body={"predictions": predictions, "metadata": {"billableCharacterCount": 10}})
        if req.action == "embedContent":
            text = _content_text((req.body or {}).get("content"))
            config = (req.body or {}).get("embedContentConfig") or {}
            dims = self._dims(req.model, config.get("outputDimensionality"))
            return Reply(
                body={
                    "embedding": {"values": fake_embedding(text, dims)},
                    "usageMetadata": {"promptTokenCount": max(1, len(text) // 4)},
                }
            )
        if req.action == "batchEmbedContents":
            requests = (req.body or {}).get("requests", [])
            return Reply(
                body={
                    "embeddings": [
                        {
                            "values": fake_embedding(
                                _content_text(r.get("content")),
                                self._dims(
                                    req.model, (r.get("embedContentConfig") or {}).get("outputDimensionality")
                                ),
                            )
                        }
                        for r in requests
                    ]
                }
            )
        if req.action == "streamGenerateContent":
            return stream_reply(["Hello", " from", " the fake."])
        return text_reply("Hello from the fake.")


def _content_text(content: Any) -> str:
    parts = (content or {}).get("parts", []) if isinstance(content, dict) else []
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict))


def _make_handler(fake: FakeVertex) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # A client that vanishes mid-request must not pin this thread forever.
        timeout = 30

        def setup(self) -> None:
            # Named so tests can tell the fake's threads from the client's.
            threading.current_thread().name = HANDLER_THREAD_NAME
            super().setup()

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            match = _PATH.match(url.path)
            if not match or match["action"] not in ACTIONS:
                self._send(
                    Reply(
                        status=404,
                        body={"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}},
                    )
                )
                return
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = raw.decode("utf-8", "replace")
            req = RecordedRequest(
                method="POST",
                path=url.path,
                query=url.query,
                model=match["model"],
                action=match["action"],
                project=match["project"],
                location=match["location"],
                version=match["version"],
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            reply = fake._record_and_pick(req)
            if reply.delay and fake._release.wait(reply.delay):
                # Released early (server stopping): the client has given up, so just hang up.
                self.close_connection = True
                return
            if reply.chunks is not None:
                self._send_stream(reply)
            else:
                self._send(reply)

        def _send(self, reply: Reply) -> None:
            payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
            self.close_connection = True

        def _send_stream(self, reply: Reply) -> None:
            self.send_response(reply.status)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.close_connection = True
            for i, chunk in enumerate(reply.chunks or []):
                if reply.cut_after is not None and i >= reply.cut_after:
                    # Drop the connection without the terminating zero-length chunk.
                    self.wfile.flush()
                    return
                if i and reply.chunk_delay and fake._release.wait(reply.chunk_delay):
                    return
                event = f"data: {json.dumps(chunk)}\r\n\r\n".encode()
                self.wfile.write(f"{len(event):X}\r\n".encode() + event + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

    return Handler


def offline_credentials() -> Any:
    """google-auth credentials with a fixed token: valid, never refreshed, no network."""
    from google.oauth2.credentials import Credentials

    return Credentials(token="test-token")


def vertex_llm_for(fake: FakeVertex, **overrides: Any) -> Any:
    """The real google-genai backend pointed at `fake`: offline credentials, a 5 s timeout and
    near-instant retries unless `overrides` (LLMConfig fields) say otherwise, and no real sleeps."""
    from vertex_interface import LLMConfig, RetryPolicy, create_llm

    fields: dict[str, Any] = {
        "backend": "vertex",
        "project": "demo-project",
        "location": "europe-west4",
        "api_endpoint": fake.base_url,
        "timeout_s": 5,
        "retry": RetryPolicy(initial_backoff_s=0.01, max_backoff_s=0.02, jitter_s=0),
    }
    return create_llm(
        LLMConfig(**(fields | overrides)), credentials=offline_credentials(), sleep=lambda s: None
    )

"""A text-embeddings-inference server for tests: TEI's HTTP protocol, backed by the real local model.

Speaks `GET /info`, `GET /health`, `POST /embed` with TEI's request fields and its
error payloads (`{"error": ..., "error_type": ...}` with 413, 422, 429).
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from matcha.models.encoders import LocalEncoder

MAX_CLIENT_BATCH_SIZE = 32
MAX_INPUT_CHARS = 2000


class TeiServer:
    def __init__(self, encoder: LocalEncoder, model_id: str = "sentence-transformers/all-MiniLM-L6-v2") -> None:
        self.encoder = encoder
        self.model_id = model_id
        self.overloaded = False
        self.requests: list[dict] = []
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> "TeiServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def info(self) -> dict:
        return {
            "model_id": self.model_id,
            "model_sha": "test-sha",
            "model_dtype": "float32",
            "model_type": {"embedding": {"pooling": "mean"}},
            "max_concurrent_requests": 512,
            "max_input_length": 256,
            "max_batch_tokens": 16384,
            "max_client_batch_size": MAX_CLIENT_BATCH_SIZE,
            "auto_truncate": False,
            "tokenization_workers": 1,
            "version": "1.8.0",
        }

    def embed(self, body: dict) -> tuple[int, object]:
        self.requests.append(body)
        if self.overloaded:
            return 429, {"error": "Model is overloaded", "error_type": "overloaded"}
        inputs = body.get("inputs")
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not texts:
            return 422, {"error": "Input validation error: `inputs` cannot be empty", "error_type": "empty"}
        if len(texts) > MAX_CLIENT_BATCH_SIZE:
            return 413, {
                "error": f"batch size {len(texts)} > maximum allowed batch size {MAX_CLIENT_BATCH_SIZE}",
                "error_type": "validation",
            }
        if not body.get("truncate") and any(len(text) > MAX_INPUT_CHARS for text in texts):
            return 422, {
                "error": "Input validation error: `inputs` must have less than 256 tokens",
                "error_type": "validation",
            }
        vectors = self.encoder.encode_now(texts)
        return 200, [vector.tolist() for vector in vectors]

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return None

            def _reply(self, status: int, payload: object | None) -> None:
                body = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/info":
                    self._reply(200, server.info())
                elif self.path == "/health":
                    self._reply(200, None)
                else:
                    self._reply(404, {"error": "not found", "error_type": "validation"})

            def do_POST(self):
                if self.path != "/embed":
                    self._reply(404, {"error": "not found", "error_type": "validation"})
                    return
                length = int(self.headers.get("Content-Length", 0))
                try:
                    body = json.loads(self.rfile.read(length))
                except json.JSONDecodeError as error:
                    self._reply(
                        422, {"error": f"Failed to deserialize the JSON body: {error}", "error_type": "validation"}
                    )
                    return
                self._reply(*server.embed(body))

        return Handler

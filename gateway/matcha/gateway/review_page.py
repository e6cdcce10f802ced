"""The reviewers' page (`/ui/`): static files shipped in the package, under a self-only Content-Security-Policy.

The page holds no data of its own: its script calls the gateway's JSON routes of ReviewService with the
reviewer's token, so these files are served without authentication. Everything the page needs comes
from here; the policy forbids any other origin, inline scripts and inline styles.
"""

import hashlib
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

PREFIX = "/ui"
INDEX = "index.html"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    # Revalidated on every load (cheap with the ETag), so a new release is seen at once.
    "cache-control": "no-cache",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


class ReviewPage:
    def __init__(self, assets: dict[str, Asset]) -> None:
        self._assets = assets

    @classmethod
    def shipped(cls) -> "ReviewPage":
        """The files of the `ui` folder of this package, read once at start (a few tens of kilobytes)."""
        folder = resources.files("matcha.gateway") / "ui"
        assets = {}
        for entry in folder.iterdir():
            media_type = MEDIA_TYPES.get("." + entry.name.rpartition(".")[2])
            if entry.is_file() and media_type:
                body = entry.read_bytes()
                assets[entry.name] = Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
        if INDEX not in assets:
            raise RuntimeError(f"the review page is missing from the package: no ui/{INDEX}")
        return cls(assets)

    @staticmethod
    def handles(path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/")

    def respond(self, request: Request) -> Response | None:
        """The page or one of its files; None for a name it does not ship (the gateway answers 404)."""
        path = request.url.path
        if path == PREFIX:
            # The page refers to its files and to the API relatively, so it must be served from `/ui/`; a
            # relative location keeps a path prefix added by a proxy in front of the gateway.
            return RedirectResponse("ui/", status_code=308, headers=SECURITY_HEADERS)
        name = path.removeprefix(PREFIX + "/") or INDEX
        asset = self._assets.get(name)
        if asset is None:
            return None
        headers = {**SECURITY_HEADERS, "etag": asset.etag}
        if asset.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        # uvicorn leaves the body out of a HEAD response and keeps its length.
        return Response(asset.body, media_type=asset.media_type, headers=headers)

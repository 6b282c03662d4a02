"""Gated repos and rejected tokens: answers Olah's offline mirror cannot give.

Olah serves local git repos as public, ungated and without checking tokens, so these tests run
the real huggingface_hub client against a small real HTTP server on 127.0.0.1 that answers the
repo-info request the way the Hub does (status, X-Error-Code, X-Error-Message headers).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from pyhelpers.hub import DownloadError, download_snapshot

GOOD = "hf_GoodTokenForGatedRepo42"
BAD = "hf_RejectedToken0000"


class HubLike(BaseHTTPRequestHandler):
    """Answers /api/models/acme/gated/revision/main like the Hub, recording Authorization."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        """Gated without a token, 401 for an unknown token, 403 gated for a token without access."""
        auth = self.headers.get("Authorization", "")
        HubLike.seen.append(auth)
        if auth == f"Bearer {BAD}":
            status, code, msg = 401, None, "Invalid credentials in Authorization header"
        else:
            status, code, msg = 403 if auth else 401, "GatedRepo", "Access to model is restricted"
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", msg)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        """Stay quiet."""


@pytest.fixture
def hub_like(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """The Hub-like server's URL as HF_ENDPOINT; shut down after the test."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubLike)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setenv("HF_TOKEN_FILE", str(tmp_path / "secret"))
    monkeypatch.setenv("HF_DOWNLOAD_RETRIES", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "no-login"))
    HubLike.seen = []
    yield url
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_gated_without_token_says_to_pass_the_secret(hub_like: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as err:
        download_snapshot("acme/gated", tmp_path / "out")
    assert "acme/gated is gated" in str(err.value) and "--secret id=hf_token" in str(err.value)
    assert HubLike.seen and not any(HubLike.seen), "no Authorization header without a token"


def test_gated_with_token_without_access(hub_like: str, tmp_path: Path,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "secret").write_text(f"{GOOD}\n")
    with pytest.raises(DownloadError, match="gated and the token has no access") as err:
        download_snapshot("acme/gated", tmp_path / "out")
    assert HubLike.seen[0] == f"Bearer {GOOD}", "the secret file's token reaches the Hub"
    captured = capfd.readouterr()
    assert GOOD not in str(err.value) + captured.out + captured.err


def test_rejected_token_is_named_not_shown(hub_like: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_TOKEN", BAD)
    with pytest.raises(DownloadError, match=r"token was rejected .* \(401\)") as err:
        download_snapshot("acme/gated", tmp_path / "out")
    captured = capfd.readouterr()
    assert BAD not in str(err.value) + captured.out + captured.err
    assert not (tmp_path / "out").exists()

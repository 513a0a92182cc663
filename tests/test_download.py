"""Tests for alignlib.data.stringer.download against a fake figshare API on 127.0.0.1."""
from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pooch
import pytest

from alignlib.data.stringer import download as dl
from alignlib.data.errors import ChecksumError, DataFormatError

ART, VER = dl.FIGSHARE_ARTICLE, dl.FIGSHARE_VERSION
GOOD = b"session bytes " * 20000  # ~280 kB
IMAGES = b"\x80" * 150000
BAD_SERVED, BAD_LISTED = b"what the server sends", b"what figshare listed"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class FakeFigshare:
    """Serves /v2/articles/<ART>/versions/<VER>, /v2/articles/<ART>/versions, /v2/articles/<ART>/files
    and /files/<name>; records every request path."""

    def __init__(self, bodies: dict[str, bytes], listed: dict[str, str], details_cap: int | None = None,
                 latest: int = VER):
        self.bodies, self.requests = bodies, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.requests.append(self.path)
                path = self.path.split("?")[0]
                base = f"/v2/articles/{ART}"
                if path == f"{base}/versions/{VER}":
                    files = fake.listing()
                    return self._json({"id": ART, "version": VER, "files": files[:details_cap]})
                if path == f"{base}/versions":
                    return self._json([{"version": v, "url": f"{base}/versions/{v}"} for v in range(1, latest + 1)])
                if path == f"{base}/files":
                    return self._json(fake.listing() if "page=1&" in self.path else [])
                name = path.removeprefix("/files/")
                if name not in fake.bodies:
                    self.send_error(404)
                    return
                body = fake.bodies[name]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if name == "trunc.mat":  # promise the whole file, send half, hang up
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, obj):
                data = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.listed = listed
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.api = f"{self.url}/v2"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def listing(self):
        return [{"id": i, "name": n, "size": len(self.bodies.get(n, b"")), "computed_md5": h,
                 "download_url": f"{self.url}/files/{n}", "is_link_only": False}
                for i, (n, h) in enumerate(self.listed.items())]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


STEM = "natimg2800_M160825_MP027_2016-12-14"
BODIES = {f"{STEM}.mat": GOOD, "images_natimg2800_all.mat": IMAGES, "bad.mat": BAD_SERVED,
          "trunc.mat": GOOD, "nomd5.mat": b"x"}
LISTED = {f"{STEM}.mat": md5(GOOD), "images_natimg2800_all.mat": md5(IMAGES), "bad.mat": md5(BAD_LISTED),
          "trunc.mat": md5(GOOD), "nomd5.mat": ""}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def server():
    fake = FakeFigshare(BODIES, LISTED)
    yield fake
    fake.stop()


def _leftovers(dest: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.name not in keep)


def test_fetch_verifies_caches_listing_and_works_offline(server, tmp_path):
    dest = tmp_path / "stringer2019"
    session, images = dl.fetch_stringer_session(STEM, dest_dir=dest, api_base=server.api, progress=True)
    assert session == dest / f"{STEM}.mat" and session.read_bytes() == GOOD
    assert images.read_bytes() == IMAGES
    reg = json.loads((dest / dl.REGISTRY_FILE).read_text())
    assert (reg["article"], reg["version"]) == (ART, VER)
    assert {f["name"]: f["md5"] for f in reg["files"]} == LISTED
    api_calls = [r for r in server.requests if r.startswith("/v2/")]
    assert api_calls == [f"/v2/articles/{ART}/versions/{VER}"]  # 5 files < 10: no paging needed
    server.stop()  # offline from here on: cached listing + local files verified by md5
    again = dl.fetch_stringer([f"{STEM}.mat"], dest_dir=dest, api_base="http://127.0.0.1:9/v2", progress=False)
    assert again == [session]
    pup = dl.stringer_registry(dest, api_base="http://127.0.0.1:9/v2")
    assert isinstance(pup, pooch.Pooch) and pup.registry[f"{STEM}.mat"] == f"md5:{md5(GOOD)}"
    assert "nomd5.mat" not in pup.registry
    assert _leftovers(dest, {dl.REGISTRY_FILE, f"{STEM}.mat", "images_natimg2800_all.mat"}) == []


def test_corrupted_local_copy_is_downloaded_again(server, tmp_path):
    (tmp_path / f"{STEM}.mat").write_bytes(b"stale")
    [path] = dl.fetch_stringer(f"{STEM}.mat", dest_dir=tmp_path, api_base=server.api, progress=False)
    assert path.read_bytes() == GOOD


def test_checksum_mismatch(server, tmp_path):
    with pytest.raises(ChecksumError, match="bad.mat") as info:
        dl.fetch_stringer(["bad.mat"], dest_dir=tmp_path, api_base=server.api, progress=False)
    msg = str(info.value)
    assert md5(BAD_LISTED) in msg and md5(BAD_SERVED) in msg
    assert isinstance(info.value, ValueError) and isinstance(info.value, DataFormatError)
    assert not (tmp_path / "bad.mat").exists() and _leftovers(tmp_path, {dl.REGISTRY_FILE}) == []


def test_unknown_name_and_missing_md5(server, tmp_path):
    with pytest.raises(ValueError, match=re.escape(f"{STEM}.mat")):  # suggests the close match
        dl.fetch_stringer(["natimg2800_M160825_MP027_2016-12-15.mat"], dest_dir=tmp_path,
                          api_base=server.api, progress=False)
    with pytest.raises(ValueError, match="not a file of figshare article"):
        dl.fetch_stringer(["zzz"], dest_dir=tmp_path, api_base=server.api, progress=False)
    with pytest.raises(ChecksumError, match="nomd5.mat.*no md5"):
        dl.fetch_stringer(["nomd5.mat"], dest_dir=tmp_path, api_base=server.api, progress=False)
    assert not any(r.startswith("/files/") for r in server.requests)


def test_truncated_download_leaves_no_file(server, tmp_path):
    with pytest.raises((ConnectionError, ChecksumError), match="trunc.mat"):
        dl.fetch_stringer(["trunc.mat"], dest_dir=tmp_path, api_base=server.api, progress=False)
    assert "/files/trunc.mat" in server.requests
    assert not (tmp_path / "trunc.mat").exists()
    assert _leftovers(tmp_path, {dl.REGISTRY_FILE}) == []  # no temporary file left either


def test_listing_capped_at_ten_files_is_completed_from_files_endpoint(tmp_path):
    bodies = {f"f{i:02d}.bin": bytes([i]) * 100 for i in range(12)}
    fake = FakeFigshare(bodies, {n: md5(b) for n, b in bodies.items()}, details_cap=10)
    try:
        [path] = dl.fetch_stringer("f11.bin", dest_dir=tmp_path, api_base=fake.api, progress=False)
        assert path.read_bytes() == bodies["f11.bin"]
        assert len(json.loads((tmp_path / dl.REGISTRY_FILE).read_text())["files"]) == 12
    finally:
        fake.stop()
    fake = FakeFigshare(bodies, {n: md5(b) for n, b in bodies.items()}, details_cap=10, latest=VER + 1)
    try:
        with pytest.warns(UserWarning, match="truncated"):
            pup = dl.stringer_registry(tmp_path / "other", api_base=fake.api)
        assert len(pup.registry) == 10
    finally:
        fake.stop()


def test_cached_listing_for_another_version_is_refused(tmp_path):
    (tmp_path / dl.REGISTRY_FILE).write_text(json.dumps({"article": ART, "version": VER - 1, "files": []}))
    with pytest.raises(DataFormatError, match=dl.REGISTRY_FILE):
        dl.fetch_stringer(["x.mat"], dest_dir=tmp_path, api_base="http://127.0.0.1:9/v2", progress=False)

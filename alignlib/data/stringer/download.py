"""Checksummed download of the Stringer et al. (2019) files from figshare (article 6845348, pinned v3).

No checksums are hard-coded: the figshare API listing of the pinned version gives each file's
``computed_md5`` and download URL. The listing is cached as ``registry.json`` next to the files, so
later fetches use the same pinned hashes without asking the API again, and files already present are
verified offline. Downloads go through :mod:`pooch`, which writes to a temporary file and renames it
only once the md5 matches: an interrupted or corrupted download never appears at the final path.
"""
from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import pooch

from alignlib.data.errors import ChecksumError, DataFormatError
from alignlib.data.stringer.loader import image_file_for
from alignlib.paths import data_dir

FIGSHARE_ARTICLE = 6845348
FIGSHARE_VERSION = 3
FIGSHARE_DOI = f"10.25378/janelia.{FIGSHARE_ARTICLE}.v{FIGSHARE_VERSION}"
DEFAULT_API = "https://api.figshare.com/v2"
REGISTRY_FILE = "registry.json"
_DETAILS_FILE_CAP = 10  # figshare documents the article-details file list as "up to 10 files"
_PAGE_SIZE = 100
_MD5 = re.compile(r"^[0-9a-f]{32}$")


def default_dir() -> Path:
    """``<ALIGNLIB_DATA_DIR>/stringer2019``."""
    return data_dir() / "stringer2019"


def _get_json(url: str, timeout: float = 60):
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "alignlib"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except (urllib.error.URLError, OSError) as e:
        raise ConnectionError(f"figshare API request {url} failed: {e}") from e
    try:
        return json.loads(body)
    except ValueError as e:
        raise DataFormatError(f"{url}: figshare API answer is not JSON: {e}") from e


def _clean_entry(entry, source: str) -> dict:
    """Keep name, download_url, md5 ('' when figshare gives none), size; reject unsafe names."""
    name = entry.get("name") if isinstance(entry, dict) else None
    url = entry.get("download_url") if isinstance(entry, dict) else None
    if not isinstance(name, str) or not name or name in (".", "..", REGISTRY_FILE) or "/" in name \
            or "\\" in name or not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise DataFormatError(f"{source}: bad file entry in the figshare listing: {entry!r}")
    md5 = str(entry.get("computed_md5") or "").lower()
    return {"name": name, "download_url": url, "md5": md5 if _MD5.match(md5) else "",
            "size": entry.get("size")}


def _paged_files(url: str) -> list:
    files, seen = [], set()
    for page in range(1, 51):
        batch = _get_json(f"{url}?page={page}&page_size={_PAGE_SIZE}")
        if not isinstance(batch, list):
            raise DataFormatError(f"{url}: expected a JSON list of files, got {type(batch).__name__}")
        new = [f for f in batch if isinstance(f, dict) and f.get("name") not in seen]
        files += new
        seen.update(f.get("name") for f in new)
        if len(batch) < _PAGE_SIZE or not new:  # last page, or an endpoint that ignores paging
            break
    return files


def _query_listing(api_base: str) -> list[dict]:
    base = f"{api_base.rstrip('/')}/articles/{FIGSHARE_ARTICLE}"
    details_url = f"{base}/versions/{FIGSHARE_VERSION}"
    details = _get_json(details_url)
    files = details.get("files") if isinstance(details, dict) else None
    if not isinstance(files, list) or not files:
        raise DataFormatError(f"{details_url}: the figshare answer has no 'files' list")
    files = [_clean_entry(f, details_url) for f in files]
    if len(files) >= _DETAILS_FILE_CAP:
        # The details list may be cut at 10 files. When the pinned version is the latest one, the
        # paginated files endpoint lists the same version in full; check that it agrees.
        versions = _get_json(f"{base}/versions")
        latest = max((int(v["version"]) for v in versions if isinstance(v, dict) and "version" in v), default=0)
        if latest == FIGSHARE_VERSION:
            full = [_clean_entry(f, f"{base}/files") for f in _paged_files(f"{base}/files")]
            if not {(f["name"], f["md5"]) for f in files} <= {(f["name"], f["md5"]) for f in full}:
                raise DataFormatError(f"{base}/files: disagrees with the listing of version {FIGSHARE_VERSION}")
            files = full
        else:
            warnings.warn(f"figshare lists {len(files)} files for article {FIGSHARE_ARTICLE} "
                          f"v{FIGSHARE_VERSION}, possibly truncated (latest version is v{latest})")
    return files


def _listing(dest: Path, api_base: str) -> list[dict]:
    """The pinned file listing: from ``dest/registry.json`` if cached, else from the API (then cached)."""
    path = dest / REGISTRY_FILE
    if path.is_file():
        try:
            reg = json.loads(path.read_text())
            files = [_clean_entry(f | {"computed_md5": f.get("md5")}, str(path)) for f in reg["files"]]
        except (ValueError, KeyError, TypeError) as e:
            raise DataFormatError(f"{path}: unreadable cached figshare listing ({e}); delete it to re-query") from e
        if (reg.get("article"), reg.get("version")) != (FIGSHARE_ARTICLE, FIGSHARE_VERSION):
            raise DataFormatError(f"{path}: cached listing is for article {reg.get('article')} "
                                  f"v{reg.get('version')}, not {FIGSHARE_ARTICLE} v{FIGSHARE_VERSION}")
        return files
    files = _query_listing(api_base)
    dest.mkdir(parents=True, exist_ok=True)
    record = {"article": FIGSHARE_ARTICLE, "version": FIGSHARE_VERSION, "doi": FIGSHARE_DOI,
              "api": api_base, "retrieved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "files": files}
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=".registry-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=2)
    os.replace(tmp, path)
    return files


def _pooch(dest: Path, files: Iterable[dict]) -> pooch.Pooch:
    files = [f for f in files if f["md5"]]  # files without a hash are never handed to pooch
    return pooch.create(path=dest, base_url="", registry={f["name"]: f"md5:{f['md5']}" for f in files},
                        urls={f["name"]: f["download_url"] for f in files})


def stringer_registry(dest_dir: str | os.PathLike | None = None, api_base: str = DEFAULT_API) -> pooch.Pooch:
    """A :class:`pooch.Pooch` for the pinned figshare version (files lacking an md5 are left out)."""
    dest = Path(dest_dir) if dest_dir is not None else default_dir()
    return _pooch(dest, _listing(dest, api_base))


def _is_network_error(e: OSError) -> bool:
    """An HTTP/connection failure raised by pooch's downloader (not a local filesystem error)."""
    return type(e).__module__.split(".")[0] in ("requests", "urllib3") or isinstance(e, (ConnectionError, TimeoutError))


def fetch_stringer(names: str | Iterable[str], dest_dir: str | os.PathLike | None = None,
                   api_base: str = DEFAULT_API, progress: bool = True) -> list[Path]:
    """Download (or verify the local copies of) the named figshare files; return their paths."""
    names = [names] if isinstance(names, str) else list(names)
    dest = Path(dest_dir) if dest_dir is not None else default_dir()
    files = {f["name"]: f for f in _listing(dest, api_base)}
    for name in names:
        if name not in files:
            close = difflib.get_close_matches(name, files, n=3) or sorted(files)[:5]
            raise ValueError(f"{name!r} is not a file of figshare article {FIGSHARE_ARTICLE} "
                             f"v{FIGSHARE_VERSION} ({len(files)} files, listing {dest / REGISTRY_FILE}); "
                             f"e.g. {', '.join(close)}")
        if not files[name]["md5"]:
            raise ChecksumError(f"{dest / name}: the figshare listing gives no md5 for {name!r}; "
                                "refusing to download a file that cannot be verified")
    pup = _pooch(dest, files.values())
    downloader = pooch.HTTPDownloader(progressbar=progress)
    paths = []
    for name in names:
        try:
            paths.append(Path(pup.fetch(name, downloader=downloader)))
        except ValueError as e:  # pooch's hash mismatch ("... expected md5:X but got Y ...")
            raise ChecksumError(f"{dest / name}: checksum mismatch, expected md5 {files[name]['md5']} "
                                f"(figshare v{FIGSHARE_VERSION} listing); pooch: {e}") from e
        except OSError as e:  # pooch's HTTP errors (requests' exceptions are OSErrors)
            if not _is_network_error(e):
                raise
            raise ConnectionError(f"{dest / name}: download from {files[name]['download_url']} failed "
                                  f"({e}); no partial file was kept") from e
    return paths


def fetch_stringer_session(mouse_session_stem: str, dest_dir: str | os.PathLike | None = None,
                           api_base: str = DEFAULT_API, progress: bool = True) -> tuple[Path, Path]:
    """Fetch ``<stem>.mat`` and the images file it indexes; return (session_path, images_path)."""
    stem = mouse_session_stem.removesuffix(".mat")
    session, images = fetch_stringer([f"{stem}.mat", image_file_for(stem)], dest_dir, api_base, progress)
    return session, images

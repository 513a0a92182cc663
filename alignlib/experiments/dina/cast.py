"""Which recording backs each mouse of the DINA chapter: the real Stringer session when its files
are present under ``$ALIGNLIB_DATA_DIR/stringer2019``, otherwise the ground-truth twin.

Labels follow the paper: M1-M4 natural-image mice, W1-W2 whitened, D1-D2 8D. The paper does not say
which recordings M1-M4 are; we take the first four natimg2800 sessions of the published list
(:data:`DINA_REAL_SESSIONS`) and say so on the data page.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignlib.data.stringer import SESSIONS, STIMSET_STEMS, StringerSession, image_file_for, load_session
from alignlib.data.twin import STIMSET_OF_PREFIX, TwinConfig, TwinManifest, generate_twin
from alignlib.paths import data_dir, work_dir

DINA_REAL_SESSIONS: dict[str, str] = {
    **{f"M{i + 1}": stem for i, stem in enumerate(SESSIONS[STIMSET_STEMS["natural"]][:4])},
    **{f"D{i + 1}": stem for i, stem in enumerate(SESSIONS[STIMSET_STEMS["8D"]][:2])},
    # whitened sessions are not named in the published format notes: W1/W2 exist only in the twin
}
STIMSETS = STIMSET_OF_PREFIX  # label prefix -> stimulus set (natural | whitened | 8D)
SOURCES = ("auto", "real", "twin")


#: the twin sizes: ``smoke`` (tests), ``quick`` (laptop: 1,000 images x 600 neurons, every mouse),
#: ``paper-images`` (the data-regime question at the recordings' size on a CPU: the paper's 2,800 images
#: and 2,000 neurons, one natural mouse M1) and ``paper`` (2,800 x 10,000, every mouse)
TWIN_SIZES = ("smoke", "quick", "paper-images", "paper")
#: neurons of the ``paper-images`` twin: what one CPU thread trains DINA (quick widths) on in about an
#: hour per seed (29 s per epoch for one idle run at 2,240 training images, measured with
#: alignlib.bench.cases.dina_step; the runs themselves record their own times)
PAPER_IMAGES_NEURONS = 2000


def twin_config(size: str, seed: int = 0) -> TwinConfig:
    """The twin's configuration for a size of :data:`TWIN_SIZES`."""
    if size == "smoke":
        return TwinConfig.quick(seed=seed, n_images=80, n_neurons=100, n_spont_timepoints=150,
                                n_reference_images=80)
    if size == "quick":
        return TwinConfig.quick(seed=seed)
    if size == "paper-images":
        return TwinConfig.paper(seed=seed, n_neurons=PAPER_IMAGES_NEURONS, n_natural_mice=1,
                                n_whitened_mice=0, n_8d_mice=0)
    if size == "paper":
        return TwinConfig.paper(seed=seed)
    raise ValueError(f"twin size must be one of {', '.join(TWIN_SIZES)}, got {size!r}")


def twin_dir(size: str, seed: int = 0) -> Path:
    return work_dir() / "twin" / f"{size}-seed{seed}"


def ensure_twin(size: str = "quick", seed: int = 0, progress: bool = True) -> TwinManifest:
    """Generate the twin of this size and seed once (reused while its config and files are unchanged)."""
    return generate_twin(twin_dir(size, seed), twin_config(size, seed), progress=progress, reuse_existing=True)


def real_session_files(label: str, root: Path | None = None) -> tuple[Path, Path] | None:
    """(session, images) paths of the real recording behind ``label``, or None if not present."""
    stem = DINA_REAL_SESSIONS.get(label)
    if stem is None:
        return None
    folder = (root or data_dir()) / "stringer2019"
    session, images = folder / f"{stem}.mat", folder / image_file_for(stem)
    return (session, images) if session.exists() and images.exists() else None


@dataclass
class MouseRecording:
    """One mouse of the chapter: its loaded session and where it came from."""

    label: str
    stimset: str                      # natural | whitened | 8D
    source: str                       # real | twin
    session: StringerSession
    dataset: str                      # which data set (shared by the mice of one twin), for banners
    description: str                  # dataset plus this mouse's file
    identity: dict[str, Any] = field(default_factory=dict)  # files, checksums, twin size/seed
    groundtruth_path: Path | None = None


def load_mouse(label: str, source: str = "auto", twin_size: str = "quick", twin_seed: int = 0,
               progress: bool = False) -> MouseRecording:
    """Load mouse ``label`` (M1-M4, W1-W2, D1-D2) from the real recording or the twin.

    ``source="auto"`` uses the real files when present, else the twin; ``"real"`` insists on the
    real files (a clear error says where they were looked for and how to download them).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if not label or label[0] not in STIMSETS:
        raise ValueError(f"unknown mouse {label!r}: use M1-M4 (natural), W1-W2 (whitened), D1-D2 (8D)")
    stimset = STIMSETS[label[0]]
    real = real_session_files(label) if source in ("auto", "real") else None
    if source == "real" and real is None:
        stem = DINA_REAL_SESSIONS.get(label)
        where = data_dir() / "stringer2019"
        raise FileNotFoundError(
            f"no real recording for {label}: " + (f"{stem}.mat and {image_file_for(stem)} not found in {where}; "
                                                  f"download them with alignlib.data.stringer.download.fetch_stringer_session"
                                                  f"({stem!r})" if stem else "no public session is assigned to it"))
    if real is not None:
        session = load_session(*real)
        dataset = "real recordings (Stringer et al. 2019, figshare 6845348 v3)"
        return MouseRecording(label, stimset, "real", session, dataset, f"{dataset}, file {real[0].name}",
                              {"session_file": real[0].name, "images_file": real[1].name,
                               "session_sha256": session.meta["session_sha256"],
                               "images_sha256": session.meta["images_sha256"]})
    manifest = ensure_twin(twin_size, twin_seed, progress=progress)
    mouse = manifest.mouse(label)
    session = load_session(manifest.session_path(label), manifest.images_path(label))
    cfg = manifest.config
    dataset = (f"ground-truth twin '{twin_size}' (seed {twin_seed}: {cfg['n_images']} images x "
               f"{cfg['n_neurons']} neurons)")
    return MouseRecording(
        label, stimset, "twin", session, dataset, f"{dataset}, file {mouse.session_file}",
        {"twin_size": twin_size, "twin_seed": twin_seed, "session_file": mouse.session_file,
         "images_file": mouse.images_file, "session_sha256": manifest.sha256[mouse.session_file],
         "images_sha256": manifest.sha256[mouse.images_file]},
        manifest.groundtruth_path(label))

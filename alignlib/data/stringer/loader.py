"""Loader for the Stringer et al. (2019) natimg2800 recordings (figshare doi:10.25378/janelia.6845348).

File layout (described in :mod:`alignlib.data.stringer`) and preprocessing follow Stringer's public
loaders (``processResp/loadProc2800.m`` and the Python notebook of MouseLand/stringer-pachitariu-et-al-2018b).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io
import scipy.linalg

from alignlib.data.errors import DataFormatError
from alignlib.repro import file_sha256

IMAGE_SHAPE = (68, 270)  # degrees of visual angle: 3 screens of 90 columns
#: the stimulus sets of the DINA chapter -> the stem their files carry (the MATLAB code calls the
#: whitened set 'white2800' but its files are ``natimg2800_white_*``). One vocabulary for the package.
STIMSET_STEMS: dict[str, str] = {"natural": "natimg2800", "whitened": "natimg2800_white", "8D": "natimg2800_8D"}
_MICE = {"MP027": "M160825_MP027", "MP030": "M161025_MP030", "MP031": "M170604_MP031",
         "MP032": "M170714_MP032", "MP033": "M170717_MP033", "MP034": "M170717_MP034"}
_8D = [("MP030", "2017-06-07"), ("MP031", "2017-07-02"), ("MP032", "2017-08-10"),
       ("MP032", "2017-09-15"), ("MP033", "2017-08-22"), ("MP034", "2017-09-15")]
SESSIONS: dict[str, list[str]] = {
    "natimg2800": [f"natimg2800_{s}" for s in (
        "M160825_MP027_2016-12-14", "M161025_MP030_2017-05-29", "M170604_MP031_2017-06-28",
        "M170714_MP032_2017-08-07", "M170714_MP032_2017-09-14", "M170717_MP033_2017-08-20",
        "M170717_MP034_2017-09-11")],
    "natimg2800_8D": [f"natimg2800_8D_{_MICE[m]}_{d}" for m, d in _8D],
    # the recordings' index (dbstims.mat) lists 4 whitened sessions whose names we have not verified:
    # left empty rather than guessed (the figshare listing, see alignlib.data.stringer.download, has them).
    "natimg2800_white": [],
}
IMAGE_FILES = {"natimg2800": "images_natimg2800_all.mat",
               "natimg2800_white": "images_natimg2800_white_all.mat"}


def image_file_for(session_stem: str) -> str:
    """Name of the images file a session indexes: shared for natimg2800(/white), per session for 8D/4D/small."""
    for stimset in ("natimg2800_8D", "natimg2800_4D", "natimg2800_small"):
        if session_stem.startswith(stimset + "_"):
            return f"images_{session_stem}.mat"
    if session_stem.startswith("natimg2800_white_"):
        return IMAGE_FILES["natimg2800_white"]
    return IMAGE_FILES["natimg2800"]


@dataclass
class StringerSession:
    """One recording: images, responses split into two repeats, and where they came from."""

    images: np.ndarray            # (n_images, 68, 270) float32, pixel values 0..255, gray = 128
    responses: np.ndarray         # (n_images, n_neurons, 2) float32: repeat 1 / repeat 2 halves
    image_ids: np.ndarray         # (n_images,) int64, 0-based indices into the images file, ascending
    neuron_positions: np.ndarray  # (n_neurons, 3) float32, [y, x, plane] from `med`
    session_path: str
    images_path: str
    preprocessed: bool
    meta: dict = field(default_factory=dict)

    @property
    def mean_response(self) -> np.ndarray:
        """(n_images, n_neurons) average of the two halves."""
        return self.responses.mean(axis=2)

    @property
    def n_images(self) -> int:
        return int(self.responses.shape[0])

    @property
    def n_neurons(self) -> int:
        return int(self.responses.shape[1])


def _loadmat(path: str | Path, **kwargs) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return scipy.io.loadmat(str(path), **kwargs)
    except NotImplementedError as e:  # scipy's answer for v7.3 (HDF5) files
        raise DataFormatError(f"{path}: MATLAB v7.3 (HDF5) file; expected a v5 MAT file ({e})") from e
    except Exception as e:  # scipy raises many types on garbage/truncated input
        raise DataFormatError(f"{path}: not a readable MAT file (corrupt or truncated?): "
                              f"{type(e).__name__}: {e}") from e


def _matrix(path: Path, obj, name: str, dtype=np.float32) -> np.ndarray:
    arr = np.asarray(obj)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise DataFormatError(f"{path}: {name} must be a 2-D numeric matrix, got shape {arr.shape} "
                              f"dtype {arr.dtype}")
    return arr.astype(dtype, copy=False)


def _red_cells(path: Path, stat, n_neurons: int) -> np.ndarray | None:
    """Boolean mask of red (GAD+) cells from Suite2p `stat.redcell`, or None when absent."""
    cells = [stat] if isinstance(stat, dict) else list(np.ravel(np.asarray(stat, dtype=object)))
    if not cells or not all(isinstance(c, dict) for c in cells) or "redcell" not in cells[0]:
        return None
    if len(cells) != n_neurons:
        raise DataFormatError(f"{path}: stat has {len(cells)} entries but resp has {n_neurons} neurons")
    return np.array([np.ravel(c["redcell"]).size > 0 and np.ravel(c["redcell"])[0] > 0.5 for c in cells])


def _top_pcs(x: np.ndarray, k: int) -> np.ndarray:
    """(n_features, k) top right singular vectors of x (time x neurons), from the eigenvectors of
    the smaller Gram matrix (as Stringer's ``eigsh``): ``x.T @ x`` when there are at least as many
    timepoints as neurons, else ``x @ x.T``, whose top eigenvectors ``u`` give ``v = x.T u / s``
    (exact; a full SVD of the paper-size 3,000 x 10,000 spontaneous block took 18 s, this 2 s)."""
    t, n = x.shape
    if t >= n:
        _, v = scipy.linalg.eigh(x.T @ x, subset_by_index=[n - k, n - 1])
        return v[:, ::-1]
    w, u = scipy.linalg.eigh(x @ x.T, subset_by_index=[t - k, t - 1])
    w, u = w[::-1], u[:, ::-1]
    # directions of (numerically) zero variance have no right singular vector to recover: a
    # centred block has at most t - 1 of them; dropping them keeps the columns orthonormal
    keep = w > max(w[0], 0.0) * t * np.finfo(x.dtype).eps
    v = x.T @ u[:, keep]
    return v / np.linalg.norm(v, axis=0)


def responses_by_image(resp: np.ndarray, spont: np.ndarray, istim: np.ndarray, preprocess: bool = True,
                       n_spont_pcs: int = 32, source: str = "responses") -> tuple[np.ndarray, np.ndarray, dict]:
    """Stringer's preprocessing (``loadProc2800.m``) of in-memory arrays, as :func:`load_session` applies it.

    ``resp`` (presentations x neurons), ``spont`` (timepoints x neurons) and ``istim`` (1-based ids,
    the largest = gray screen). Returns the two-halves responses (n_images, n_neurons, 2) float32, the
    0-based ids of those images (ascending), and counts of what was dropped or set.
    """
    resp = np.asarray(resp, dtype=np.float32)
    spont = np.asarray(spont, dtype=np.float64)
    ids = np.asarray(istim, dtype=np.float64).ravel().astype(np.int64) - 1
    n_neurons = resp.shape[1]
    # 1. drop gray presentations, NaN -> 0
    keep = ids < ids.max()
    resp, ids = resp[keep], ids[keep]
    nan_resp, nan_spont = int(np.isnan(resp).sum()), int(np.isnan(spont).sum())
    resp, spont = np.nan_to_num(resp, nan=0.0), np.nan_to_num(spont, nan=0.0)
    k = 0
    if preprocess:
        # 2. z-score by spontaneous statistics; 3. project out top spont PCs; 4. centre each neuron
        mu, sd = spont.mean(axis=0), spont.std(axis=0) + 1e-6
        resp = ((resp - mu) / sd).astype(np.float32)
        spont = (spont - mu) / sd
        k = int(max(0, min(n_spont_pcs, *spont.shape)))
        if k:
            v = _top_pcs(spont, k).astype(np.float32)
            k = v.shape[1]          # fewer when the block has fewer directions of variance
            resp -= (resp @ v) @ v.T
        resp -= resp.mean(axis=0, dtype=np.float64).astype(np.float32)

    # 5. split each image's presentations (in time order) into two halves and average each
    order = np.argsort(ids, kind="stable")
    uniq, starts, counts = np.unique(ids[order], return_index=True, return_counts=True)
    usable = counts >= 2
    if not usable.any():
        raise DataFormatError(f"{source}: no image was presented at least twice")
    halves = np.empty((int(usable.sum()), n_neurons, 2), dtype=np.float32)
    for j, (s, c) in enumerate(zip(starts[usable], counts[usable])):
        rows, h = order[s:s + c], c // 2
        halves[j, :, 0] = resp[rows[:h]].mean(axis=0)
        halves[j, :, 1] = resp[rows[h:]].mean(axis=0)
    steps = {"n_gray_presentations_dropped": int((~keep).sum()), "n_nan_set_to_zero": nan_resp,
             "n_nan_spont_set_to_zero": nan_spont, "n_images_dropped_fewer_than_2_repeats": int((~usable).sum()),
             "n_spont_pcs": k}
    return halves, uniq[usable].astype(np.int64), steps


def load_session(session_path: str | Path, images_path: str | Path, preprocess: bool = True,
                 n_spont_pcs: int = 32, drop_red_cells: bool = True) -> StringerSession:
    """Load one session and its images, following Stringer's ``loadProc2800.m``.

    Gray-screen presentations (istim == max(istim)) are dropped and NaNs set to 0. With ``preprocess``
    each neuron is z-scored by its spontaneous mean/std (std + 1e-6), the top ``n_spont_pcs`` PCs of
    the z-scored spontaneous activity are projected out, and each neuron is mean-centred over
    presentations. Each image's presentations are then split in time into two halves (first
    floor(k/2) vs the rest), each averaged; images with < 2 presentations and red cells are dropped.
    """
    session_path, images_path = Path(session_path), Path(images_path)
    dat = _loadmat(session_path, simplify_cells=True, variable_names=("stim", "med", "stat"))
    stim = dat.get("stim")
    if not isinstance(stim, dict):
        raise DataFormatError(f"{session_path}: no struct 'stim' (found variables {sorted(dat)})")
    missing = [f for f in ("resp", "spont", "istim") if f not in stim]
    if missing:
        raise DataFormatError(f"{session_path}: struct 'stim' lacks field(s) {missing}")
    if "med" not in dat:
        raise DataFormatError(f"{session_path}: no variable 'med' (cell positions)")
    resp = _matrix(session_path, stim["resp"], "stim.resp")
    spont = _matrix(session_path, stim["spont"], "stim.spont", np.float64)
    med = _matrix(session_path, dat["med"], "med")
    istim = np.asarray(stim["istim"], dtype=np.float64).ravel()  # (n,), (n,1) or (1,n)
    n_pres, n_neurons = resp.shape
    if istim.size != n_pres:
        raise DataFormatError(f"{session_path}: stim.istim has {istim.size} entries but stim.resp has "
                              f"{n_pres} rows (presentations)")
    if spont.shape[1] != n_neurons:
        raise DataFormatError(f"{session_path}: stim.spont has {spont.shape[1]} neurons but stim.resp "
                              f"has {n_neurons}")
    if preprocess and spont.shape[0] < 2:
        raise DataFormatError(f"{session_path}: stim.spont has {spont.shape[0]} timepoints; need >= 2 "
                              f"to z-score (or pass preprocess=False)")
    if med.shape != (n_neurons, 3):
        raise DataFormatError(f"{session_path}: med has shape {med.shape}, expected ({n_neurons}, 3)")
    if n_pres == 0 or not np.all(np.isfinite(istim)) or np.any(istim < 1) or np.any(istim != np.round(istim)):
        raise DataFormatError(f"{session_path}: stim.istim must be non-empty 1-based integer ids")
    red = _red_cells(session_path, dat.get("stat"), n_neurons) if drop_red_cells else None

    imgs = _loadmat(images_path, variable_names=("imgs",)).get("imgs")
    if imgs is None:
        raise DataFormatError(f"{images_path}: no variable 'imgs'")
    if imgs.ndim != 3 or imgs.shape[:2] != IMAGE_SHAPE:
        raise DataFormatError(f"{images_path}: imgs has shape {imgs.shape}, expected "
                              f"{IMAGE_SHAPE + ('n_images',)}")
    n_file = imgs.shape[2]

    # 1. drop gray presentations (gray = largest id, 2801 for natimg2800), NaN -> 0
    ids = istim.astype(np.int64) - 1
    gray = int(ids.max())
    keep = ids < gray
    if gray > n_file or (keep.any() and ids[keep].max() >= n_file):
        raise DataFormatError(f"{session_path}: image ids out of range of {images_path} "
                              f"({n_file} images): largest non-gray id {ids[keep].max(initial=-1)}, "
                              f"gray id {gray} (0-based)")
    halves, image_ids, steps = responses_by_image(resp, spont, istim, preprocess, n_spont_pcs, str(session_path))

    cells = ~red if red is not None else np.ones(n_neurons, dtype=bool)
    meta = {
        "n_presentations": n_pres, "n_gray_presentations_dropped": steps["n_gray_presentations_dropped"],
        "gray_index": gray, "n_images_in_file": n_file,
        "n_nan_set_to_zero": steps["n_nan_set_to_zero"], "n_nan_spont_set_to_zero": steps["n_nan_spont_set_to_zero"],
        "n_images_dropped_fewer_than_2_repeats": steps["n_images_dropped_fewer_than_2_repeats"],
        "n_red_cells_dropped": int((~cells).sum()), "n_spont_pcs": steps["n_spont_pcs"],
        "session_sha256": file_sha256(session_path), "images_sha256": file_sha256(images_path),
    }
    return StringerSession(
        images=np.moveaxis(imgs[:, :, image_ids], 2, 0).astype(np.float32),
        responses=np.ascontiguousarray(halves[:, cells]),
        image_ids=image_ids,
        neuron_positions=med[cells].astype(np.float32),
        session_path=str(session_path), images_path=str(images_path),
        preprocessed=bool(preprocess), meta=meta)


def load_class_labels(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """Read ``stimuli_class_assignment[_confident].mat``: (labels (n_images,) int64, class_names).

    ``labels[i]`` is a 0-based index into ``class_names`` (0 is 'unknown').
    """
    path = Path(path)
    dat = _loadmat(path, simplify_cells=True)
    missing = [f for f in ("class_assignment", "class_names") if f not in dat]
    if missing:
        raise DataFormatError(f"{path}: missing variable(s) {missing}")
    labels = np.asarray(dat["class_assignment"]).ravel()
    names = [str(n) for n in np.atleast_1d(np.asarray(dat["class_names"], dtype=object)).ravel()]
    if not np.issubdtype(labels.dtype, np.number) or labels.size == 0 or labels.min() < 0 \
            or labels.max() >= len(names) or np.any(labels != np.round(labels)):
        raise DataFormatError(f"{path}: class_assignment must hold indices into the "
                              f"{len(names)} class_names")
    return labels.astype(np.int64), names

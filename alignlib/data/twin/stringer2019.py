"""The twin in the Stringer et al. (2019) natimg2800 file format: config, manifest, generation.

``generate_twin`` writes synthetic mice in exactly the file format of the real recordings
(:mod:`alignlib.data.stringer`: session files ``natimg2800[_white|_8D]_<mouse>_<date>.mat`` with a
MATLAB struct ``stim`` holding ``resp``, ``spont``, ``istim``, plus ``med``, ``stat``, ``db``; image
files with ``imgs`` of shape 68 x 270 x n, uint8, gray 128), together with a ground-truth file per
session that holds every neuron's receptive-field parameters and its noise-free mean response to
every image. Mice: M1.. natural images, W1.. whitened, D1.. 8D (:data:`STIMSET_OF_PREFIX`).

Each neuron's drive d_n (:mod:`~alignlib.data.twin.neurons`) is normalised as

    mu_n(s)  = gain_n * d_n(s) / scale_n
    scale_n  = sd_ref(d_n)^(1-beta) * sd_own(d_n)^beta

(std over reference natural images and over the mouse's own image set; beta = contrast_adaptation,
gain adaptation to the stimulus ensemble, Ohzawa, Sclar & Freeman 1982); trials follow
:mod:`~alignlib.data.twin.trials`. ``mu`` is stored as the ground truth (``mean_response``);
rectification makes the expected trial response a monotone function of it. Each mouse covers a
region of the 68 x 270 deg field (by default the left and centre screens, azimuth 0-180, the part the
authors' own receptive-field fits use).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from alignlib.data.stringer.loader import IMAGE_FILES, STIMSET_STEMS, image_file_for
from alignlib.data.twin.neurons import PARAM_KEYS, drive, rf_region, sample_neurons
from alignlib.data.twin.stimuli import (MIX_KINDS, STIMULUS_SETS, low_dimensional_images, natural_stimuli,
                                        whiten_images)
from alignlib.data.twin.trials import presentations, trial_responses
from alignlib.data.twin.writers import savemat, savez, write_images
from alignlib.repro import file_sha256, provenance, write_json

__all__ = ["TwinConfig", "TwinMouse", "TwinManifest", "generate_twin", "load_manifest", "load_groundtruth",
           "MANIFEST_NAME", "GENERATOR_VERSION", "STIMSET_OF_PREFIX",
           "image_stream", "mouse_stream", "normalised_responses", "SimulatedMouse", "simulate_mouse"]

MANIFEST_NAME = "twin_manifest.json"
#: bump when a code change alters what a given config and seed generate, so stale twins are rebuilt
GENERATOR_VERSION = 3   # 2: the "mixed" natural set (default; "photo-crops" gives version-1 files);
                        # 3: whitened set by the natural set's average spectrum
                        #    (natural and 8D files unchanged)
#: mouse-label prefix -> stimulus set (the vocabulary of :data:`alignlib.data.stringer.STIMSET_STEMS`)
STIMSET_OF_PREFIX = {"M": "natural", "W": "whitened", "D": "8D"}


@dataclass
class TwinConfig:
    """Everything that defines a twin; the same config and seed give byte-identical files."""

    n_images: int = 2800
    n_neurons: int = 10000
    n_spont_timepoints: int = 3000
    n_natural_mice: int = 4
    n_whitened_mice: int = 2
    n_8d_mice: int = 2
    seed: int = 0
    # stimuli (alignlib.data.twin.stimuli)
    stimuli: str = "mixed"                 # natural set: "mixed" or the legacy "photo-crops"
    stimulus_fractions: tuple[float, float, float] = (0.3, 0.4, 0.3)  # mixed: photo crops, dead leaves,
                                                                      # 1/f textures with edges
    image_contrast: tuple[float, float] = (0.25, 0.45)   # RMS contrast (pixel std / 128) of images
    crop_scale: tuple[float, float] = (0.35, 1.0)        # crop width / widest 68:270 crop of a source
    max_crop_overlap: float = 0.2          # mixed: target largest overlap of two crops of one photograph
    max_crop_rotation: float = 20.0        # mixed: crops rotated uniformly within +- this (deg)
    n_8d_components: int = 8
    # retinotopy: each mouse's receptive fields cover a region of the 68 x 270 deg field
    rf_azimuth_span: float = 180.0         # deg of azimuth covered by the imaged patch of cortex
    rf_elevation_span: float = 68.0        # deg of elevation
    rf_scatter: float = 5.0                # deg, local scatter of RF centres around the map
    rf_azimuth_range: tuple[float, float] = (0.0, 180.0)  # where regions lie (left + centre screens)
    fov_um: float = 1000.0                 # imaged field of view, for ``med``
    n_planes: int = 10
    # tuning (Niell & Stryker 2008)
    sigma_range: tuple[float, float] = (3.0, 10.0)          # deg, log-uniform envelope sd
    wavelength_range: tuple[float, float] = (10.0, 50.0)    # deg, log-uniform: 0.02-0.1 cycles/deg
    complex_fraction: float = 0.5
    output_exponent: float = 1.0           # p: 1 = half-rectified linear / energy amplitude
    rf_truncate: float = 4.0               # envelope is zero beyond rf_truncate * sigma
    n_reference_images: int = 500          # natural images that set each neuron's scale_n
    contrast_adaptation: float = 0.5       # 0: scale_n from natural images only; 1: from the
                                           # mouse's own stimulus set (full gain adaptation)
    # variability
    gain_median: float = 0.4               # signal sd in units of the trial-noise sd (log-normal)
    gain_log_sd: float = 0.8
    noise_sd: float = 1.0
    noise_sd_log_sd: float = 0.25
    n_shared_dims: int = 16                # shared additive fluctuations (spont and stim)
    shared_sd: float = 1.0                 # their total sd per neuron
    shared_ar: float = 0.8                 # AR(1) coefficient per time step
    n_gain_dims: int = 2                   # shared multiplicative gain fluctuations
    gain_fluctuation_sd: float = 0.3
    rectify: bool = True
    # presentation design
    triple_repeat_fraction: float = 0.1    # images shown 3 times (the rest twice)
    gray_fraction: float = 0.03            # gray-screen presentations per image

    def __post_init__(self) -> None:
        problems = []
        if self.n_images < 2 or self.n_neurons < 1 or self.n_spont_timepoints < 2:
            problems.append("need n_images >= 2, n_neurons >= 1, n_spont_timepoints >= 2")
        if min(self.n_natural_mice, self.n_whitened_mice, self.n_8d_mice) < 0:
            problems.append("mouse counts must be >= 0")
        for name in ("image_contrast", "crop_scale", "rf_azimuth_range", "sigma_range", "wavelength_range"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                problems.append(f"{name} must be (lo, hi) with 0 <= lo <= hi, got {(lo, hi)}")
        if self.stimuli not in STIMULUS_SETS:
            problems.append(f"stimuli must be one of {STIMULUS_SETS}, got {self.stimuli!r}")
        fractions = np.asarray(self.stimulus_fractions, dtype=np.float64)
        if fractions.shape != (len(MIX_KINDS),) or (fractions < 0).any() or not np.isclose(fractions.sum(), 1.0):
            problems.append(f"stimulus_fractions must be {len(MIX_KINDS)} fractions ({', '.join(MIX_KINDS)}) "
                            f"summing to 1, got {self.stimulus_fractions}")
        if not 0 <= self.max_crop_rotation <= 180:
            problems.append("max_crop_rotation must lie in [0, 180] deg")
        for name in ("complex_fraction", "triple_repeat_fraction", "gray_fraction", "contrast_adaptation",
                     "max_crop_overlap"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} must lie in [0, 1]")
        if not 0 <= self.shared_ar < 1:
            problems.append("shared_ar must lie in [0, 1)")
        if self.n_8d_components < 1 or self.n_reference_images < 2 or self.output_exponent <= 0:
            problems.append("need n_8d_components >= 1, n_reference_images >= 2, output_exponent > 0")
        if problems:
            raise ValueError("invalid TwinConfig: " + "; ".join(problems))

    @classmethod
    def quick(cls, **overrides: Any) -> "TwinConfig":
        """Small twin for laptops and CI: 1000 images, 600 neurons, 600 spontaneous frames."""
        return cls(**{"n_images": 1000, "n_neurons": 600, "n_spont_timepoints": 600,
                      "n_reference_images": 300, **overrides})

    @classmethod
    def paper(cls, **overrides: Any) -> "TwinConfig":
        """The size of the real recordings: 2800 images, 10,000 neurons."""
        return cls(**overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TwinConfig":
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()})


@dataclass
class TwinMouse:
    label: str            # M1..M4 natural, W1..W2 whitened, D1..D2 8D
    stimset: str          # file stem: natimg2800 | natimg2800_white | natimg2800_8D
    mouse: str
    date: str
    session_file: str
    images_file: str
    groundtruth_file: str
    rf_region: list[int]  # [row0, row1, col0, col1), half-open, in image pixels

    @property
    def stimulus_set(self) -> str:
        """natural | whitened | 8D (``stimset`` is the file stem, as in the real recordings)."""
        return STIMSET_OF_PREFIX[self.label[0]]


@dataclass
class TwinManifest:
    out_dir: Path
    config: dict[str, Any]
    seed: int
    mice: list[TwinMouse]
    sha256: dict[str, str]
    source_images: list[str]              # the photographs that were cropped
    provenance: dict[str, Any] = field(default_factory=dict)
    image_sources: list[str] = field(default_factory=list)  # per natural image: photograph or generator

    def mouse(self, label: str) -> TwinMouse:
        for m in self.mice:
            if m.label == label:
                return m
        raise KeyError(f"no twin mouse {label!r}; have {[m.label for m in self.mice]}")

    def session_path(self, label: str) -> Path:
        return self.out_dir / self.mouse(label).session_file

    def images_path(self, label: str) -> Path:
        return self.out_dir / self.mouse(label).images_file

    def groundtruth_path(self, label: str) -> Path:
        return self.out_dir / self.mouse(label).groundtruth_file


# ----------------------------------------------------------------------------- generation

def _mice_plan(cfg: TwinConfig) -> list[tuple[str, str, str, str]]:
    """(label, stimset file stem, mouse, date) for each twin mouse."""
    plan = []
    counts = {"M": cfg.n_natural_mice, "W": cfg.n_whitened_mice, "D": cfg.n_8d_mice}
    for prefix, count in counts.items():
        for j in range(count):
            k = len(plan)
            plan.append((f"{prefix}{j + 1}", STIMSET_STEMS[STIMSET_OF_PREFIX[prefix]], f"TW{k + 1:03d}",
                         f"2020-01-{10 + k % 19:02d}"))
    return plan


def _stream(seed: int, *key: int) -> np.random.Generator:
    """One independent random stream per image set / mouse."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def image_stream(cfg: TwinConfig) -> np.random.Generator:
    """The random stream of the natural images."""
    return _stream(cfg.seed, 0)


def mouse_stream(cfg: TwinConfig, label: str) -> np.random.Generator:
    """The random stream of mouse ``label``: M2 is M2 whatever the counts of other mice."""
    return _stream(cfg.seed, 1 + "MWD".index(label[0]), int(label[1:]))


def normalised_responses(cfg: TwinConfig, params: Mapping[str, np.ndarray], images: np.ndarray,
                         reference: np.ndarray, reference_is_prefix: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free responses ``mu`` (n_images, n_neurons) float32 and each neuron's ``scale_n``.

    ``reference`` are the natural images that set the reference sd; ``reference_is_prefix`` says
    that they are the first images of ``images`` (their drive is then not recomputed).
    """
    d = drive(params, images, cfg.output_exponent, cfg.rf_truncate)
    ref = d[: len(reference)] if reference_is_prefix else drive(params, reference, cfg.output_exponent,
                                                                 cfg.rf_truncate)
    ref_sd = ref.std(axis=0, dtype=np.float64)
    own_sd = d.std(axis=0, dtype=np.float64)
    beta = cfg.contrast_adaptation
    scale = np.maximum(ref_sd, 1e-9) ** (1 - beta) * np.maximum(own_sd, 1e-9) ** beta
    d *= (params["gain"] / scale).astype(np.float32)
    return d, scale


@dataclass
class SimulatedMouse:
    """One twin mouse in memory: its neurons, images, noise-free and trial responses."""

    label: str
    stimulus_set: str                  # natural | whitened | 8D
    params: dict[str, np.ndarray]      # neurons (alignlib.data.twin.neurons.sample_neurons)
    rf_region: list[int]
    images: np.ndarray                 # (n_images, 68, 270) uint8 the mouse saw
    mean_response: np.ndarray          # mu, (n_images, n_neurons) float32
    drive_scale: np.ndarray            # scale_n
    istim: np.ndarray                  # 1-based image id per presentation (n_images + 1 = gray)
    resp: np.ndarray                   # (presentations, neurons) float32
    spont: np.ndarray                  # (timepoints, neurons) float32


def simulate_mouse(cfg: TwinConfig, label: str, natural: np.ndarray, white: np.ndarray | None = None,
                   reference: np.ndarray | None = None) -> SimulatedMouse:
    """Simulate mouse ``label`` of the twin ``cfg`` in memory, as :func:`generate_twin` writes it.

    ``natural`` are the twin's natural images (:func:`~alignlib.data.twin.stimuli.natural_stimuli`),
    ``white`` their whitened versions (whitened mice only), ``reference`` the natural images that set
    the response scale (default: the first ``cfg.n_reference_images``).
    """
    kind = STIMSET_OF_PREFIX[label[0]]
    if reference is None:
        reference = natural[: min(cfg.n_reference_images, len(natural))]
    rng = mouse_stream(cfg, label)
    p = sample_neurons(rng, cfg)
    region = rf_region(p)
    if kind == "natural":
        images = natural
    elif kind == "whitened":
        images = whiten_images(natural) if white is None else white
    else:
        images = low_dimensional_images(natural, region, cfg.n_8d_components)
    mu, scale = normalised_responses(cfg, p, images, reference, reference_is_prefix=images is natural)
    istim = presentations(rng, len(natural), cfg.triple_repeat_fraction, cfg.gray_fraction)
    resp, spont = trial_responses(rng, p, mu, istim, cfg.n_spont_timepoints, cfg.shared_ar, cfg.rectify)
    return SimulatedMouse(label, kind, p, region, images, mu, scale, istim, resp, spont)


def generate_twin(out_dir: str | Path, config: TwinConfig | None = None, progress: bool = True,
                  reuse_existing: bool = True) -> TwinManifest:
    """Write the twin's image files, sessions, ground truth and ``twin_manifest.json``.

    With ``reuse_existing`` and a manifest in ``out_dir`` made from the same config whose files
    are all present, nothing is regenerated and that manifest is returned. Two commands that ask for
    the same folder at once (two pages, two test processes) take turns under the folder's lock
    (``.twin.lock``): the second finds the first one's twin and reuses it. A read-only folder (a
    shared, pre-generated twin) needs no lock: its twin is reused if it matches, else an error says so.
    """
    import os

    from alignlib.paths import locked

    cfg = config or TwinConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        found = _matching_twin(out, cfg) if reuse_existing else None
        if found is None:
            raise PermissionError(f"the twin folder {out} is read-only and holds no twin of this configuration")
        return found
    with locked(out / ".twin.lock", f"the twin {out}"):
        found = _matching_twin(out, cfg) if reuse_existing else None
        return found if found is not None else _write_twin(out, cfg, progress)


def _matching_twin(out: Path, cfg: TwinConfig) -> TwinManifest | None:
    """The manifest of the twin in ``out`` when this generator made it from ``cfg`` and all its files are
    present, else None."""
    if not (out / MANIFEST_NAME).exists():
        return None
    old = load_manifest(out)
    same_generator = json.loads((out / MANIFEST_NAME).read_text()).get("generator_version") == GENERATOR_VERSION
    if same_generator and old.config == json.loads(json.dumps(cfg.to_dict())) \
            and all((out / f).exists() for f in old.sha256):
        return old
    return None


def _write_twin(out: Path, cfg: TwinConfig, progress: bool) -> TwinManifest:
    """:func:`generate_twin`'s work, under its lock."""
    from tqdm import tqdm

    natural_file, white_file = IMAGE_FILES[STIMSET_STEMS["natural"]], IMAGE_FILES[STIMSET_STEMS["whitened"]]
    natural, image_sources, used = natural_stimuli(cfg, image_stream(cfg))
    write_images(out / natural_file, natural)
    white = None
    if cfg.n_whitened_mice:
        white = whiten_images(natural)
        write_images(out / white_file, white)
    reference = natural[: min(cfg.n_reference_images, cfg.n_images)]

    mice: list[TwinMouse] = []
    plan = _mice_plan(cfg)
    for label, stimset, mouse, date in tqdm(plan, desc="twin mice", disable=not progress):
        stem = f"{stimset}_{mouse}_{date}"
        images_file = image_file_for(stem)
        sim = simulate_mouse(cfg, label, natural, white, reference)
        if sim.stimulus_set == "8D":
            write_images(out / images_file, sim.images)
        p, region, mu, scale, istim, resp, spont = (sim.params, sim.rf_region, sim.mean_response, sim.drive_scale,
                                                    sim.istim, sim.resp, sim.spont)
        del sim

        stat = np.zeros((cfg.n_neurons, 1), dtype=[("npix", "O")])
        for i, v in enumerate(p["npix"]):
            stat[i, 0]["npix"] = v
        savemat(out / f"{stem}.mat", {
            "stim": {"resp": resp, "spont": spont, "istim": istim.astype(np.float64)[:, None]},
            "med": p["med"], "stat": stat,
            "db": {"mouse_name": mouse, "date": date, "expts": np.array([[1.0]]), "twin_label": label},
        })
        gt_file = f"groundtruth_{stem}.npz"
        savez(out / gt_file, {
            **{key: p[key] for key in PARAM_KEYS},
            "cell_type": np.where(p["is_complex"], "complex", "simple"),
            "gain": p["gain"], "noise_sd": p["noise_sd"], "drive_scale": scale,
            "shared_loadings": p["shared_loadings"], "gain_loadings": p["gain_loadings"],
            "output_exponent": np.float64(cfg.output_exponent), "rf_truncate": np.float64(cfg.rf_truncate),
            "mean_response": mu, "rf_region": np.asarray(region), "label": np.str_(label),
            "stimset": np.str_(stimset), "images_file": np.str_(images_file),
        })
        mice.append(TwinMouse(label, stimset, mouse, date, f"{stem}.mat", images_file, gt_file, region))
        del resp, spont, mu

    files = sorted({f for m in mice for f in (m.session_file, m.images_file, m.groundtruth_file)} | {natural_file})
    manifest = TwinManifest(out, json.loads(json.dumps(cfg.to_dict())), cfg.seed, mice,
                            {f: file_sha256(out / f) for f in files}, used,
                            provenance(generator="alignlib.data.twin.generate_twin"), image_sources)
    write_json(out / MANIFEST_NAME, {**asdict(manifest), "out_dir": None, "generator_version": GENERATOR_VERSION})
    return manifest


def load_manifest(out_dir: str | Path) -> TwinManifest:
    """Read ``twin_manifest.json`` from a twin folder."""
    out = Path(out_dir)
    path = out / MANIFEST_NAME
    if not path.exists():
        raise FileNotFoundError(f"no twin manifest at {path}; run generate_twin({str(out)!r}, ...) first")
    d = json.loads(path.read_text())
    mice = [TwinMouse(**m) for m in d["mice"]]
    return TwinManifest(out, d["config"], d["seed"], mice, d["sha256"], d["source_images"],
                        d.get("provenance", {}), d.get("image_sources", []))


def load_groundtruth(path: str | Path) -> dict[str, np.ndarray]:
    """A ground-truth file as a dict of arrays (scalars as 0-d arrays)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}

"""Loader of the Onken 2016 retina recordings on tiny fixtures written in the Dryad layout."""
import numpy as np
import pytest
import scipy.io

from alignlib.data import onken
from alignlib.data.errors import DataFormatError

SIDE = 36  # a 10x-binned 360 px movie: side must be inferred from the file size


def _cell_array(rows):
    arr = np.empty((len(rows), len(rows[0])), dtype=object)
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            arr[i, j] = np.asarray(v, dtype=np.int32).reshape(-1, 1)
    return arr


def _write(root, name="Movie1Exp1", n_frames=(30, 20), contours=None, spikes=None):
    rng = np.random.default_rng(0)
    for m, n in zip((1, 2), n_frames):
        d = root / "Stimuli" / f"Movie{m}"
        d.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            frame = np.zeros((SIDE, SIDE), np.uint8)
            frame[k % SIDE, :] = 255            # row k lit in frame k (row index = y)
            frame.T.ravel().tofile(d / f"frame{k + 1:04d}.raw")  # MATLAB column-major
    if spikes is None:  # 3 cells x 4 trials, times in ms; cell 2 silent
        spikes = [[[5, 15, 15.5, 299], [15]] + [[25]] * 2, [[100, 200]] * 4, [[]] * 4]
        spikes = [[s if isinstance(s, list) else s for s in row] for row in spikes]
        spikes = [row[:4] if len(row) >= 4 else row + [row[-1]] * (4 - len(row)) for row in spikes]
    for sub, var, value in (("Spikes", "Spikes", _cell_array(spikes)),):
        (root / "NeuralData" / sub).mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / "NeuralData" / sub / f"{name}.mat",
                         {var: value, "n_trials": np.uint8(len(spikes[0])), "n_neurons": np.uint8(len(spikes))})
    if contours is None:  # squares in display coordinates, movie origin at (220, 120)
        contours = [np.array([[220 + a, 220 + a + 36, 220 + a + 36, 220 + a],
                              [120 + a, 120 + a, 120 + a + 36, 120 + a + 36]], float) for a in (0, 36, 180)]
    rf = np.empty((1, len(contours)), dtype=object)
    for i, c in enumerate(contours):
        rf[0, i] = c
    (root / "NeuralData" / "ReceptiveFields").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "NeuralData" / "ReceptiveFields" / f"{name}.mat", {"ReceptiveFields": rf})
    return root


def test_load_bins_counts_frames_and_masks(tmp_path, monkeypatch):
    monkeypatch.setitem(onken.MOVIE_FRAMES, 1, 30)
    root = _write(tmp_path)
    rec = onken.load_recording("Movie1Exp1", root, frame_ms=10.0, onset_ms=0.0)
    assert rec.movie == 1 and rec.frame_ms == 10.0 and rec.meta["timing"] == "given by the caller"
    assert rec.frames.shape == (30, SIDE, SIDE) and rec.frames.dtype == np.float32
    assert rec.frames[3, 3].min() == 1.0 and rec.frames[3, 4].max() == 0.0   # transposed back: row 3 lit
    assert rec.counts.shape == (4, 30, 3)
    assert rec.counts[0, 1, 0] == 2 and rec.counts[0, 0, 0] == 1 and rec.counts[0, 29, 0] == 1
    assert rec.counts[:, 10, 1].tolist() == [1] * 4 and rec.counts[:, 20, 1].tolist() == [1] * 4
    np.testing.assert_allclose(rec.rates, rec.counts.mean(0))
    assert rec.meta["silent_cells"] == [2] and rec.meta["n_spikes_outside_frames"] == 0
    # square 36 display px -> 3.6 frame px at side 36 (360 -> 36)
    assert rec.rf_masks.shape == (3, SIDE, SIDE) and 9 <= rec.rf_masks[0].sum() <= 16
    # display y runs opposite to the frame rows (RF_Y_FLIPPED): the square at the display's top edge of the
    # movie lands on the frame's bottom rows
    assert rec.rf_masks[0, SIDE - 2, 1] and not rec.rf_masks[0, 1, 1] and not rec.rf_masks[0, 10, 10]
    grid = rec.rf_masks_on_grid(16)
    assert grid.shape == (3, 16, 16) and grid.max() <= 1.0
    # each square covers 1/100 of the frame -> total area fraction * 256 patches
    np.testing.assert_allclose(grid.sum(axis=(1, 2)), 256 / 100, rtol=0.05)


def test_drop_silent_and_spikes_after_movie(tmp_path, monkeypatch):
    monkeypatch.setitem(onken.MOVIE_FRAMES, 1, 30)
    rec = onken.load_recording("Movie1Exp1", _write(tmp_path), frame_ms=5.0, onset_ms=0.0, drop_silent=True)
    assert rec.counts.shape == (4, 30, 2) and len(rec.rf_contours) == 2 and rec.rf_masks.shape[0] == 2
    assert rec.meta["n_spikes_outside_frames"] == 1 + 4  # 299 ms once, 200 ms in 4 trials (movie ends at 150 ms)


def test_movie_follows_the_file_name_and_pinned_timing_cuts_the_movie(tmp_path, monkeypatch):
    monkeypatch.setitem(onken.MOVIE_FRAMES, 1, 30)
    monkeypatch.setitem(onken.MOVIE_FRAMES, 2, 20)
    root = _write(tmp_path, name="Movie1Exp2")
    monkeypatch.setattr(onken, "TRIAL_MS", 150.0)
    monkeypatch.setattr(onken, "FRAME_MS", 10.0)
    # the trial starts 40 ms into the movie: frames 4..18 (15 frames of 10 ms in 150 ms) are on screen
    monkeypatch.setitem(onken.TIMING, "Movie1Exp2", -40.0)
    rec = onken.load_recording("Movie1Exp2", root)
    assert rec.movie == 1 and rec.meta["movie_by_readme"] == 2
    assert rec.meta["first_frame"] == 4 and rec.n_frames == 15 and rec.meta["onset_ms"] == -40.0
    assert rec.frames[0, 4].min() == 1.0          # frame 4 (row 4 lit) is the first kept frame
    # spike at 5 ms (trial time) falls in frame 4 = bin 0; 15.5 ms -> bin 1; 299 ms is after the trial's frames
    assert rec.counts[0, 0, 0] == 1 and rec.counts[0, 1, 0] == 2
    # a movie starting 25 ms after trial start: frame 0 from 25 ms, spikes before it are dropped
    monkeypatch.setitem(onken.TIMING, "Movie1Exp2", 25.0)
    rec = onken.load_recording("Movie1Exp2", root)
    assert rec.meta["first_frame"] == 0 and rec.n_frames == 12  # floor((150 - 25) / 10)
    assert rec.counts[:, 0, 0].tolist() == [0, 0, 1, 1]        # the 25 ms spikes of trials 2, 3 -> bin 0
    monkeypatch.setitem(onken.TIMING, "Movie1Exp2", None)
    rec = onken.load_recording("Movie1Exp2", root)
    assert rec.frame_ms == onken.DEFAULT_FRAME_MS and "no timing found" in rec.meta["timing"]
    with pytest.raises(ValueError, match="frames inside"):
        onken.load_recording("Movie1Exp2", root, frame_ms=10.0, onset_ms=200.0)


def test_bad_inputs(tmp_path, monkeypatch):
    monkeypatch.setitem(onken.MOVIE_FRAMES, 1, 30)
    with pytest.raises(ValueError, match="unknown recording"):
        onken.load_recording("Movie3Exp1", tmp_path)
    root = _write(tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="Movie2Exp1"):
        onken.load_recording("Movie2Exp1", root)
    monkeypatch.setitem(onken.MOVIE_FRAMES, 1, 31)
    with pytest.raises(DataFormatError, match="30 frame files, expected 31"):
        onken.load_recording("Movie1Exp1", root)
    monkeypatch.setitem(onken.MOVIE_FRAMES, 1, 30)
    outside = [np.array([[0, 10, 10], [0, 0, 10]], float)] * 3
    with pytest.raises(DataFormatError, match="outside"):
        onken.load_recording("Movie1Exp1", _write(tmp_path / "b", contours=outside), frame_ms=10.0, onset_ms=0.0)
    partly = [np.array([[200, 260, 260], [120, 120, 160]], float)] * 3
    rec = onken.load_recording("Movie1Exp1", _write(tmp_path / "c", contours=partly), frame_ms=10.0, onset_ms=0.0)
    assert rec.meta["rf_clipped_cells"] == [0, 1, 2]
    (tmp_path / "a" / "Stimuli" / "Movie1" / "frame0002.raw").write_bytes(b"\0" * 10)
    with pytest.raises(DataFormatError, match="bytes"):
        onken.load_frames(1, tmp_path / "a")


def test_split_windows():
    train, test = onken.split_windows(100, 0.2, gap=10)
    assert (train, test) == (slice(0, 70), slice(80, 100))
    train, test = onken.split_windows(100, 0.2, gap=5, position="start")
    assert (train, test) == (slice(25, 100), slice(0, 20))
    with pytest.raises(ValueError):
        onken.split_windows(10, 0.5, gap=9)


def test_checksums(tmp_path, monkeypatch):
    monkeypatch.setitem(onken.MOVIE_FRAMES, 1, 30)
    root = _write(tmp_path)
    import hashlib
    rel = "NeuralData/Spikes/Movie1Exp1.mat"
    good = {rel: hashlib.sha256((root / rel).read_bytes()).hexdigest()}
    assert onken.verify_checksums(root, good) == {rel: True}
    with pytest.raises(onken.ChecksumError):
        onken.verify_checksums(root, {rel: "0" * 64})


def _write_natural_images(root, n_images=24, side=32, name="NaturalImages1", seed=0):
    """Images + flash responses of 3 cells whose counts follow the luminance inside their RF (loader's geometry)."""
    rng = np.random.default_rng(seed)
    folder = root / "Stimuli" / "NaturalImages"
    folder.mkdir(parents=True, exist_ok=True)
    images = rng.integers(0, 256, size=(n_images, side, side)).astype(np.uint8)
    for k, img in enumerate(images):
        img.T.ravel().tofile(folder / f"image{k + 1:03d}.raw")          # MATLAB column-major
    ox, oy = (800 - side) / 2, (600 - side) / 2
    # three 8-px squares in display coordinates, away from the image's symmetry axes
    corners = [(2, 3), (20, 5), (6, 18)]
    contours = [np.array([[ox + x, ox + x + 8, ox + x + 8, ox + x], [oy + y, oy + y, oy + y + 8, oy + y + 8]], float)
                for x, y in corners]
    rf = np.empty((1, 3), dtype=object)
    for i, c in enumerate(contours):
        rf[0, i] = c
    (root / "NeuralData" / "ReceptiveFields").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "NeuralData" / "ReceptiveFields" / f"{name}.mat", {"ReceptiveFields": rf})
    # the loader's geometry: frame row = side - display y offset (RF_Y_FLIPPED)
    spikes = np.empty((n_images, 1), dtype=object)
    for k, img in enumerate(images):
        entry = np.empty((3, 2), dtype=object)
        for i, (x, y) in enumerate(corners):
            lum = img[side - y - 8:side - y, x:x + 8].mean() / 255
            n = int(round(10 * lum))
            for trial in range(2):
                entry[i, trial] = np.linspace(10, 250, n).reshape(-1, 1) if n else np.zeros((0, 1))
        spikes[k, 0] = entry
    (root / "NeuralData" / "Spikes").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "NeuralData" / "Spikes" / f"{name}.mat", {"Spikes": spikes})
    return images


def test_natural_images_and_rf_orientation(tmp_path, monkeypatch):
    images = _write_natural_images(tmp_path)
    loaded = onken.load_natural_images(tmp_path)
    assert loaded.shape == (24, 32, 32)
    np.testing.assert_allclose(loaded, images / 255.0, atol=1e-6)
    counts = onken.natural_image_counts("NaturalImages1", tmp_path)
    assert counts.shape == (24, 3) and counts.max() <= 10
    assert onken.natural_image_counts("NaturalImages1", tmp_path, window_ms=(300, 400)).sum() == 0
    monkeypatch.setattr(onken, "NATURAL_IMAGE_RECORDINGS", {"Exp1": "NaturalImages1"})
    rows = onken.rf_orientation_evidence(tmp_path, n_shuffles=5)
    by = {r["orientation"]: r["mean_abs_r"] for r in rows}
    assert len(by) == 8 and max(by, key=by.get) == "as loaded" and by["as loaded"] > 0.7
    assert by["rows flipped"] < 0.4 and rows[0]["shuffled_mean_abs_r"] < 0.4
    # with the y flip switched off, the loader's geometry is no longer the one the responses follow
    monkeypatch.setattr(onken, "RF_Y_FLIPPED", False)
    by = {r["orientation"]: r["mean_abs_r"] for r in onken.rf_orientation_evidence(tmp_path, n_shuffles=2)}
    assert max(by, key=by.get) == "rows flipped"


def test_real_files_match_the_pinned_checksums():
    import os
    from pathlib import Path

    env = os.environ.get("ALIGNLIB_DATA_DIR")
    root = (Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data") / "onken2016"
    if not root.is_dir():
        pytest.skip(f"{root} not present")
    assert len(onken.SHA256) == 12
    assert all(onken.verify_checksums(root).values())


def _trial_spikes(totals, n_cells=3, seed=0):
    """[cell][trial] spike times (ms in 0..300) with ``totals[j]`` spikes in trial j spread over the cells."""
    rng = np.random.default_rng(seed)
    return [[np.sort(rng.uniform(0, 300, size=n // n_cells + (c < n % n_cells))) for n in totals]
            for c in range(n_cells)]


def test_silent_trials_rule():
    rng = np.random.default_rng(1)
    normal = list(rng.integers(2200, 3100, size=29))            # the real recordings' spread (0.87-1.66)
    assert onken.silent_trials(_trial_spikes(normal)) == []
    assert onken.silent_trials(_trial_spikes([1430] + [850] * 29)) == []   # a hot first trial is kept
    assert onken.silent_trials(_trial_spikes([68] + normal)) == [0]
    assert onken.silent_trials(_trial_spikes(normal[:10] + [900] + normal[10:])) == [10]  # 0.35 of the median
    assert onken.silent_trials(_trial_spikes(normal[:5] + [1600] + normal[5:])) == []     # 0.6: variation
    assert onken.silent_trials(_trial_spikes([900] + normal), fraction=0.2) == []
    with pytest.raises(ValueError, match="fraction"):
        onken.silent_trials(_trial_spikes(normal), fraction=1.5)


def test_loader_excludes_a_silent_trial(tmp_path, monkeypatch):
    monkeypatch.setitem(onken.MOVIE_FRAMES, 1, 30)
    spikes = [[[5, 15, 25, 35], [15, 25, 45], [25, 55, 65], []], [[100, 200]] * 3 + [[120]], [[]] * 4]
    root = _write(tmp_path, spikes=spikes)   # trial 3: 1 spike against a median of 5
    rec = onken.load_recording("Movie1Exp1", root, frame_ms=10.0, onset_ms=0.0)
    assert rec.n_trials == 3 and rec.meta["excluded_trials"] == [3]
    assert rec.counts[:, 12, 1].sum() == 0 and rec.counts[:, 10, 1].tolist() == [1, 1, 1]
    kept = onken.load_recording("Movie1Exp1", root, frame_ms=10.0, onset_ms=0.0, exclude_silent_trials=False)
    assert kept.n_trials == 4 and kept.meta["excluded_trials"] == [] and kept.counts[3, 12, 1] == 1
    rate = onken.population_rate("Movie1Exp1", root, bin_ms=10.0, duration_ms=300.0)
    np.testing.assert_allclose(rate, rec.counts.mean(0)[:30])
    row = onken.trial_exclusions(root, names=["Movie1Exp1"])[0]
    assert row["excluded_trials"] == [3] and row["excluded_spikes"] == [1] and row["n_trials"] == 4


def _real_root():
    import os
    from pathlib import Path

    env = os.environ.get("ALIGNLIB_DATA_DIR")
    root = (Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data") / "onken2016"
    if not (root / "NeuralData" / "Spikes" / "Movie2Exp2.mat").is_file():
        pytest.skip(f"{root} not present")
    return root


def test_real_recordings_exclude_only_movie2exp2_trial0():
    rows = {r["recording"]: r for r in onken.trial_exclusions(_real_root())}
    assert rows["Movie2Exp2"]["excluded_trials"] == [0] and rows["Movie2Exp2"]["excluded_spikes"] == [68]
    for name in ("Movie1Exp1", "Movie2Exp1", "Movie1Exp2"):
        assert rows[name]["excluded_trials"] == [] and rows[name]["min_fraction_of_median"] > 0.8


def test_stretches_load_each_part_of_the_trial_at_its_own_onset(tmp_path, monkeypatch):
    """A recording whose movie jumps back within the trial (onken.STRETCHES): each stretch keeps only
    the frames wholly inside it, at its own onset, and bins the spikes from that stretch's first frame."""
    monkeypatch.setitem(onken.MOVIE_FRAMES, 1, 30)
    monkeypatch.setitem(onken.MOVIE_FRAMES, 2, 20)
    root = _write(tmp_path, name="Movie1Exp2")
    monkeypatch.setattr(onken, "TRIAL_MS", 150.0)
    monkeypatch.setattr(onken, "FRAME_MS", 10.0)
    # 0-60 ms at onset -40 (frames 4-9), then the movie goes back: 80-150 ms at onset +60 (frames 2-8)
    monkeypatch.setitem(onken.STRETCHES, "Movie1Exp2", ((0.0, 60.0, -40.0), (80.0, 150.0, 60.0)))
    lead, late = onken.load_stretches("Movie1Exp2", root)
    assert (lead.meta["first_frame"], lead.n_frames) == (4, 6)
    assert (late.meta["first_frame"], late.n_frames) == (2, 7)
    assert lead.frames[0, 4].min() == 1.0 and late.frames[0, 2].min() == 1.0   # rows lit = movie frame
    assert lead.meta["stretch"] == (0.0, 60.0, -40.0) and "onken.STRETCHES" in late.meta["timing"]
    assert lead.counts[0, 0, 0] == 1 and lead.counts[0, 1, 0] == 2     # 5 ms; 15 and 15.5 ms
    assert lead.counts[:, 2, 0].tolist() == [0, 0, 1, 1]              # 25 ms spikes of trials 2, 3
    assert late.counts[:, 2, 1].tolist() == [1] * 4                   # 100 ms = 20 ms after 80 ms
    assert late.counts[:, :, 0].sum() == 0                            # cell 0 has no spike in 80-150 ms
    # a window is the same cut by hand; a recording without stretches loads whole
    same = onken.load_recording("Movie1Exp2", root, frame_ms=10.0, onset_ms=60.0, window_ms=(80.0, 150.0))
    np.testing.assert_array_equal(same.counts, late.counts)
    monkeypatch.setitem(onken.TIMING, "Movie1Exp2", -40.0)
    monkeypatch.delitem(onken.STRETCHES, "Movie1Exp2")
    (whole,) = onken.load_stretches("Movie1Exp2", root)
    assert whole.n_frames == 15 and "stretch" not in whole.meta
    with pytest.raises(TypeError, match="onset_ms"):
        onken.load_stretches("Movie1Exp2", root, onset_ms=0.0)
    with pytest.raises(ValueError, match="window_ms"):
        onken.load_recording("Movie1Exp2", root, window_ms=(100.0, 50.0))
    with pytest.raises(ValueError, match="frames inside 0-15 ms"):
        onken.load_recording("Movie1Exp2", root, window_ms=(0.0, 15.0))


def test_pinned_stretches_are_ordered_and_inside_the_trial():
    for name, parts in onken.STRETCHES.items():
        assert name in onken.RECORDINGS and len(parts) >= 2
        ends = [0.0] + [v for s, e, _ in parts for v in (s, e)] + [onken.TRIAL_MS]
        assert ends == sorted(ends), f"{name}: stretches overlap or run outside the trial"


def _tiled_spikes(seed=0, n_cells=6, n_trials=4, period=290, block=(6000, 9000)):
    """Poisson spikes (whole ms, ~40 Hz per cell) with one tiled block per trial: the first period of the
    block copied every ``period`` ms up to its end, a different pattern in each trial."""
    rng = np.random.default_rng(seed)
    spikes = []
    for _ in range(n_cells):
        row = []
        for _ in range(n_trials):
            t = np.unique(rng.integers(0, 18000, size=720)).astype(float)
            source = t[(t >= block[0]) & (t < block[0] + period)]
            copies = [source + k * period for k in range(1, (block[1] - block[0]) // period)]
            t = np.concatenate([t[(t < block[0] + period) | (t >= block[1])], *copies])
            row.append(np.sort(t))
        spikes.append(row)
    return spikes


def test_tiled_blocks_find_copied_spikes_and_the_loader_keeps_the_longest_clean_part(tmp_path, monkeypatch):
    spikes = _tiled_spikes()
    period, ratio = onken.tiling_period(spikes)
    assert period == 290 and ratio > 1.0
    found = onken.tiled_blocks(spikes)
    assert found["period_ms"] == 290
    for start, end in found["blocks"]:
        assert abs(start - 6000) <= 100 and abs(end - 8800) <= 200       # last copy starts at 8610
    assert found["tiled_share_inside"] > 0.9 and found["tiled_share_outside"] < 0.1
    # no copies: no block in any trial (chance coincidences stay below the rule)
    clean = onken.tiled_blocks(_tiled_spikes(block=(6000, 6290)), period_ms=290)
    assert clean["blocks"] == [None] * 4
    # a spike is tiled only with an exact partner one period away
    assert onken.tiled_mask(np.array([10.0, 300.0, 301.0, 900.0]), 290).tolist() == [True, True, False, False]
    # the loader keeps the longest part of the window outside the pinned block
    monkeypatch.setitem(onken.TILED_MS, "Movie1Exp1", (60.0, 100.0))
    assert onken.clean_window("Movie1Exp1", (0.0, 150.0)) == (0.0, 60.0)
    assert onken.clean_window("Movie1Exp1", (40.0, 150.0)) == (100.0, 150.0)
    assert onken.clean_window("Movie1Exp1", (100.0, 150.0)) == (100.0, 150.0)
    monkeypatch.setitem(onken.MOVIE_FRAMES, 1, 30)
    root = _write(tmp_path)
    monkeypatch.setattr(onken, "TRIAL_MS", 150.0)
    rec = onken.load_recording("Movie1Exp1", root, frame_ms=10.0, onset_ms=0.0, exclude_tiled=True)
    assert rec.n_frames == 6 and rec.meta["window_ms"] == (0.0, 60.0) and rec.meta["tiled_excluded"]
    assert rec.counts[0, 1, 0] == 2                                   # spikes before the block kept
    whole = onken.load_recording("Movie1Exp1", root, frame_ms=10.0, onset_ms=0.0, exclude_tiled=False)
    assert onken.load_recording("Movie1Exp1", root, frame_ms=10.0, onset_ms=0.0).meta["tiled_excluded"]
    assert whole.n_frames == 15 and not whole.meta["tiled_excluded"]


def test_tiled_block_of_a_recording_is_widened_by_one_bin(tmp_path):
    spikes = _tiled_spikes()
    root = _write(tmp_path, spikes=[[t.astype(int).tolist() for t in row] for row in spikes])
    b = onken.tiled_block("Movie1Exp1", root)
    assert b["n_trials_with_block"] == 4 and b["period_ms"] == 290
    assert abs(b["start_ms"] - (6000 - onken.TILE_BIN_MS)) <= 100 and b["start_ms"] < 6000
    assert 8800 <= b["end_ms"] <= 9000


def test_placed_stretch_is_the_longest_clean_stretch_of_one_timing(monkeypatch):
    monkeypatch.setitem(onken.TIMING, "Movie1Exp2", 2590.0)
    monkeypatch.setitem(onken.STRETCHES, "Movie1Exp2", ((0.0, 6000.0, -90.0), (7500.0, 18000.0, 2590.0)))
    monkeypatch.setitem(onken.TILED_MS, "Movie1Exp2", (6500.0, 9700.0))
    assert onken.placed_stretch("Movie1Exp2") == ((7500.0, 18000.0), (9700.0, 18000.0), 2590.0)
    monkeypatch.setitem(onken.TILED_MS, "Movie1Exp2", (6500.0, 14000.0))     # the later part shrinks
    assert onken.placed_stretch("Movie1Exp2") == ((0.0, 6000.0), (0.0, 6000.0), -90.0)
    monkeypatch.setitem(onken.TIMING, "Movie2Exp2", -170.0)
    monkeypatch.setitem(onken.TILED_MS, "Movie2Exp2", (16100.0, 18000.0))
    assert onken.placed_stretch("Movie2Exp2") == ((0.0, 18000.0), (0.0, 16100.0), -170.0)
    monkeypatch.setitem(onken.TIMING, "Movie2Exp1", None)
    with pytest.raises(ValueError, match="no pinned timing"):
        onken.placed_stretch("Movie2Exp1")


def test_duplicate_units_rule_tells_copies_from_synchrony(tmp_path):
    """A unit copied to the ms, and one copied 1 ms off (whole-ms rounding), are flagged; a cell firing
    2 ms after another (synchrony, not a copy) and an independent cell are not; the sparser unit of each
    flagged pair is the one to drop."""
    rng = np.random.default_rng(0)

    def train():
        return [np.sort(rng.choice(np.arange(10, 2900, 8), 60, replace=False)).astype(float) for _ in range(4)]

    base, other = train(), train()
    copy = [np.sort(np.concatenate([t[::2], [5.0]])) for t in base]             # half the spikes, to the ms
    lagged = [t + 2.0 for t in base]                                             # same drive, 2 ms later
    jittered = [t[:-5] + rng.choice([-1.0, 0.0, 1.0], t.size - 5) for t in other]   # a copy 1 ms off
    spikes = [base, copy, lagged, other, jittered]
    shares = onken.coincidence_shares(spikes, [0, 2, -2])
    assert shares[0, 1, 0] == pytest.approx(30 / 31)     # copy's spikes (30 of 31) found in base
    assert shares[0, 0, 1] == pytest.approx(0.5)
    assert shares[1, 0, 2] == 1.0 and shares[2, 2, 0] == 1.0 and shares[0, 0, 2] < 0.1
    assert onken.coincidence_shares(spikes, [0], width_ms=1)[0, 4, 3] == 1.0
    root = _write(tmp_path, spikes=[[list(t) for t in row] for row in spikes],
                  contours=[np.array([[220, 250, 250, 220], [120, 120, 150, 150]], float)] * 5)
    pairs = onken.duplicate_units("Movie1Exp1", root)
    dup = pairs[pairs.duplicate]
    assert sorted((r.cell_a, r.cell_b) for r in dup.itertuples()) == [(1, 0), (4, 3)]
    assert (dup.rf_overlap == 1.0).all()
    lag = pairs[(pairs.cell_a.isin([0, 2])) & (pairs.cell_b.isin([0, 2]))]
    assert not lag.duplicate.any()                       # synchrony 2 ms apart is not a copy
    assert onken.duplicate_cells(pairs) == [1, 4]

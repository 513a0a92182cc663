"""A ground-truth digital twin of the Stringer et al. (2019) natimg2800 recordings.

Synthetic mice written in exactly the file format of the real recordings, with known receptive
fields. The parts are reusable on their own:

* :mod:`~alignlib.data.twin.stimuli` — the natural set (photograph crops from
  :mod:`~alignlib.data.twin.photos`, dead leaves and 1/f textures from
  :mod:`~alignlib.data.twin.generative`), whitened images, 8D projections;
* :mod:`~alignlib.data.twin.neurons` — receptive-field sampling, Gabor/energy-model responses;
* :mod:`~alignlib.data.twin.trials` — presentations, shared and gain fluctuations, trial noise;
* :mod:`~alignlib.data.twin.writers` — deterministic MAT/NPZ writers in the Stringer layout;
* :mod:`~alignlib.data.twin.stringer2019` — the twin itself: :class:`TwinConfig`,
  :func:`generate_twin`, manifests and ground truth.
"""
from alignlib.data.twin.neurons import PARAM_KEYS, model_response, receptive_field_map
from alignlib.data.twin.stimuli import (GRAY, HEIGHT, MIX_KINDS, PHOTO_SOURCES, SOURCE_IMAGES, STIMULUS_SETS, WIDTH,
                                        low_dimensional_images, mixed_images, natural_images, natural_stimuli,
                                        whiten_images, average_amplitude_spectrum)
from alignlib.data.twin.stringer2019 import (GENERATOR_VERSION, MANIFEST_NAME, STIMSET_OF_PREFIX, SimulatedMouse,
                                             TwinConfig, TwinManifest, TwinMouse, generate_twin, load_groundtruth,
                                             load_manifest, simulate_mouse)

__all__ = [
    "TwinConfig", "TwinMouse", "TwinManifest", "generate_twin", "load_manifest",
    "load_groundtruth", "receptive_field_map", "model_response", "natural_images",
    "whiten_images", "average_amplitude_spectrum", "low_dimensional_images", "SOURCE_IMAGES",
    "PHOTO_SOURCES", "MANIFEST_NAME", "GENERATOR_VERSION",
    "STIMSET_OF_PREFIX", "PARAM_KEYS", "HEIGHT", "WIDTH", "GRAY", "MIX_KINDS", "STIMULUS_SETS", "mixed_images",
    "natural_stimuli", "SimulatedMouse", "simulate_mouse",
]

"""alignlib: a reproducible paper book on aligning visual stimuli with neural population responses.

Subpackages
-----------
data       loaders for real recordings (Stringer 2019, Allen, Onken 2016) and the ground-truth twin
models     image towers, neural towers, paired models (DINA, ...)
losses     training objectives (InfoNCE, ...)
metrics    retrieval, reliability and other evaluation metrics
interpret  analyses of trained models and of data (eigenspectra, ...)
runner     profiles, the declared notebook pipeline, papermill execution, the CLI
"""
from alignlib.repro import get_device, seed_everything

__version__ = "0.1.0"
__all__ = ["get_device", "seed_everything", "__version__"]

"""alignlib: a reproducible paper book on aligning visual stimuli with neural population responses.

Subpackages
-----------
data         one subpackage per dataset (stringer, ...) and the ground-truth twin
models       image towers, neural towers, paired models (DINA, ...)
losses       loss functions (InfoNCE, ...)
training     splits, normalisation, the resumable fit loop, objectives, checkpoints, run identity
metrics      retrieval, reliability, uncertainty
interpret    analyses of trained models and of data (eigenspectra, stimulus statistics, ...)
experiments  one package per chapter (dina: cast, settings, runs, controls, statistics)
claims       the papers' published numbers and the claims ledger
runner       the declared notebook pipeline, page cache, papermill execution, table of contents, the CLI
"""
from alignlib.repro import get_device, seed_everything

__version__ = "0.1.0"
__all__ = ["get_device", "seed_everything", "__version__"]

"""Models: image towers, neural towers and paired alignment models (DINA; VNA and its direct baselines)."""

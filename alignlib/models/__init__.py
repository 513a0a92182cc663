"""Models: image towers, neural towers and paired alignment models."""

"""Analyses of data and trained models (eigenspectra, ...)."""

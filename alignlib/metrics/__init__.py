"""Evaluation metrics: retrieval, reliability, ..."""

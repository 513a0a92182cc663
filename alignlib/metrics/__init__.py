"""Evaluation metrics: retrieval, discrimination (per-query ROC AUC, VNA), reliability, ..."""

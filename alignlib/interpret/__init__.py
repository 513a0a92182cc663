"""Analyses of data and trained models: eigenspectra, stimulus statistics, and the DINA interpretability analyses
(pathways, occlusion, blobs, sti, ablation, attention_scores, groundtruth; one module each)."""

"""The Vi-ST chapter's experiments (Wu et al.): settings per profile, runs (train once, cache, reload) and scoring."""

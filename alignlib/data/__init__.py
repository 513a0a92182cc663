"""Data: real recordings (Stringer 2019, Allen natural scenes, ...) and the ground-truth twin, all read by one loader per format."""

"""Data: real recordings (Stringer 2019, ...) and the ground-truth twin, all read by one loader per format."""

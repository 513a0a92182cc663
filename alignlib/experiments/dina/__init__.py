"""The DINA chapter (Wang et al. 2026): its cast of mice (:mod:`.cast`), settings per profile
(:mod:`.settings`), runs (:mod:`.workflow`), data statistics (:mod:`.stats`) and model diagnostics
(:mod:`.diagnostics`)."""

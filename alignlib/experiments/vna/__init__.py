"""The VNA chapter: settings per profile (:mod:`.settings`), the real-data signal check (:mod:`.signal`) and
the train/score/summarise protocol (:mod:`.workflow`)."""

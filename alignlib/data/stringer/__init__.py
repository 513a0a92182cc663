"""The Stringer et al. (2019) natimg2800 recordings: file format, loader and checksummed download.

Source: Stringer, Pachitariu, Steinmetz, Carandini & Harris (2019), *High-dimensional geometry of
population responses in visual cortex*, Nature 571:361-365; data on figshare, "Recordings of ten
thousand neurons in visual cortex in response to 2,800 natural images", doi:10.25378/janelia.6845348
(version 3, CC BY-NC 4.0); reference loaders in github.com/MouseLand/stringer-pachitariu-et-al-2018b
(``processResp/loadProc2800.m`` and the Python notebooks).

Format, as those loaders read it:

* session files ``<stimset>_<mouse>_<date>.mat`` (MATLAB v5), ``stimset`` one of
  :data:`STIMSET_STEMS` (``natimg2800``, ``natimg2800_white``, ``natimg2800_8D``, ...). A struct
  ``stim`` holds ``resp`` (presentations x neurons, presentation order), ``spont`` (gray-screen
  timepoints x neurons) and ``istim`` (presentations x 1, 1-based image ids as float; the largest
  id is the gray screen); ``med`` (neurons x 3) holds cell positions [y, x, plane], ``stat`` the
  Suite2p cell statistics (``redcell`` marks GAD+ cells where present), ``db`` the metadata.
* image files hold ``imgs`` of shape (68, 270, n_images), uint8, gray 128 (68 x 270 degrees, three
  90-column screens): ``images_natimg2800_all.mat`` and ``images_natimg2800_white_all.mat`` are
  shared by all mice; 8D (and 4D, small) sets have one file per session,
  ``images_<session stem>.mat``, gray outside the mouse's receptive-field region.
* ``stimuli_class_assignment[_confident].mat``: ``class_assignment`` (1 x 2800, 0..11) and
  ``class_names`` of the 2800 images.

:mod:`~alignlib.data.stringer.loader` reads these files and applies Stringer's preprocessing;
:mod:`~alignlib.data.stringer.download` fetches them from figshare with checksums.
"""
from alignlib.data.stringer.loader import (IMAGE_FILES, IMAGE_SHAPE, SESSIONS, STIMSET_STEMS, StringerSession,
                                           image_file_for, load_class_labels, load_session, responses_by_image)

__all__ = ["IMAGE_FILES", "IMAGE_SHAPE", "SESSIONS", "STIMSET_STEMS", "StringerSession", "image_file_for",
           "load_class_labels", "load_session", "responses_by_image"]

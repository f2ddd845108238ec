"""
==================================
Detecting craters in a whole image
==================================

:class:`~skcrater.detection.CraterDetector` turns a tile classifier into a
crater detector: it cuts its training tiles from an image and its crater
catalogue, scans new images at several scales and returns a table of craters,
which :func:`~skcrater.detection.match_craters` scores against a catalogue.
Here both images are synthetic scenes from
:func:`~skcrater.datasets.make_crater_scene`, with complete catalogues.
"""

# %%
# Two scenes: one to train on, one to detect in
# ---------------------------------------------
from skcrater.datasets import make_crater_scene

train_image, train_catalogue = make_crater_scene(
    320, n_craters=70, diameter_range=(6, 60), random_state=0
)
test_image, test_catalogue = make_crater_scene(
    320, n_craters=70, diameter_range=(6, 60), random_state=1
)
print(f"{len(train_catalogue)} craters to train on, {len(test_catalogue)} to find")

# %%
# The detector
# ------------
# Its windows are 40 pixels a side and learn craters of 12 to 30 pixels;
# the pyramid brings craters up to 60 pixels into that range. A small,
# briefly trained network keeps the example quick.
from skcrater import CraterCNNClassifier
from skcrater.detection import CraterDetector

# upsample_to=None: the preset would enlarge windows below 48 px, which the
# detector then could not scan densely
cnn = CraterCNNClassifier.recommended(
    preprocessing="local",
    class_weight="balanced",
    upsample_to=None,
    epochs=10,
    patience=4,
    random_state=0,
)
detector = CraterDetector(cnn, window=40, diameter_range=(12, 30), max_diameter=60, random_state=0)
detector.fit(train_image, train_catalogue)
print("training windows:", detector.training_counts_)

# %%
# Craters found in the other scene
# --------------------------------
# ``predict`` returns one table per image: centre, diameter and score.
craters = detector.predict(test_image)[0]
print(craters.head())

# %%
# How well they agree with the catalogue
# --------------------------------------
# A detection matches a catalogued crater when its centre lies within half
# a diameter and the diameters differ by at most a factor 2; craters just
# outside the scored range are neither missed nor false.
from skcrater.detection import match_craters, plot_detection_pr, plot_detections

result = match_craters(craters, test_catalogue, min_diameter=12, max_diameter=60)
print(
    f"precision {result.precision:.2f}, recall {result.recall:.2f}, F1 {result.f1:.2f}, "
    f"average precision {result.average_precision:.2f}"
)
plot_detections(test_image, craters, test_catalogue, match=result)

# %%
# Precision against recall over score thresholds:
plot_detection_pr(result)

# %%
# The score map
# -------------
# The network is evaluated fully convolutionally: every window of the scan
# gets exactly the score the classifier gives the cut tile.
from skcrater.detection import plot_score_map

plot_score_map(detector.score_map(test_image), stride=detector.stride_, window=detector.window)

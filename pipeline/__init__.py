"""lstm-lrp pipeline: CLI, config and assembly."""

from pipeline.caches import redirect_caches

redirect_caches()  # before anything here imports Keras or matplotlib

"""lstm-lrp pipeline: CLI, config and assembly."""

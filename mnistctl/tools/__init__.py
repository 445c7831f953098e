"""The small commands around training: export a model file, the packaged configs, shell completion."""

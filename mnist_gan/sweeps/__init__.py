"""Many training runs at once: the sweep spec, its trials on Ray Tune, and their progress and results."""

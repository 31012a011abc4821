"""A training run: the trainer, its events and status, checkpoints, TensorBoard, the app's training process and its laboratory."""

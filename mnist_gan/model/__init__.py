"""The GAN itself: architectures, losses, augmentation, the compiled step, generators and their weights files."""

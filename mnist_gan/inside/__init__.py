"""What a trained GAN learned: D's verdict and eye, inversion, latent directions, spot the fake, and their figures."""

"""mnist-gan: a GAN that learns to write digits, what it learned, and the app around it.

The package in layers, top to bottom (each imports only from the layers below it; tests/test_architecture.py):

    cli, service       front ends: the command line, and the app's one service (its sections below)
    sweeps             many runs on Ray Tune
    hub                push and pull models, the model card, a Space's deploy
    training           the trainer, its events, its child process, the laboratory
    serving            the models an app serves, what it draws, its files and permalinks
    quality            the project's classifier and the metrics it judges with
    inside             what a trained GAN learned: D's verdict, inversion, latent directions, spot the fake
    model              architectures, losses, the compiled GAN, generators and their weights files
    config, data, ...  the config, MNIST, images, checks, access, run folders, atomic files, errors
"""

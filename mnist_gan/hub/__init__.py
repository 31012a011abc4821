"""The Hugging Face Hub: push and pull models checked by sha256, the model card, deploying the app as a Space."""

"""Quality measured by the project's own MNIST classifier: cFID, recognisability, memorisation, precision/recall, coverage."""

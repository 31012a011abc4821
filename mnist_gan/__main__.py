"""`python -m mnist_gan`: the command line (cli.py)."""

import os
import sys

# Before TensorFlow and huggingface_hub are imported: quiet logs, and nothing phones home.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from .cli import main  # noqa: E402

sys.exit(main())

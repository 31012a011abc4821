"""The training process the app starts (`python -m mnist_gan.training.child --run-dir DIR [--data NPZ] [--resume]`).

It trains one run, writes the trainer's events as JSON lines to stdout, and obeys "pause", "resume" and "stop"
lines on stdin (end of input: stop, which saves). Anything else it prints goes to stderr, the run's worker.log.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path

from mnist_gan import run_folder
from mnist_gan.config import GANConfig
from mnist_gan.errors import MnistGanError, internal_error
from mnist_gan.run_folder import CHECKPOINT_FILE, LOG_FILE

from .checkpoint import load_meta
from .events import State, StateChanged, to_json
from .process import disk_message

NICENESS = 10  # the child yields the CPU to the app's requests
WHERE = f"the run's {LOG_FILE}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnist_gan.training.child", description=__doc__)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--data", help="MNIST .npz; default $MNIST_GAN_DATA or keras.datasets download")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    args = parser.parse_args(argv)
    if hasattr(os, "nice"):
        os.nice(NICENESS)
    # Events go to the original stdout; anything else printing to stdout (Keras, TF) lands in the log instead.
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    lock = threading.Lock()

    def send(event) -> None:
        with lock:
            events.write(to_json(event) + "\n")

    def failed(message: str, step: int = 0) -> int:
        send(StateChanged(State.FAILED, step, message))
        return 1

    try:
        run_lock = run_folder.lock(Path(args.run_dir), busy=f"another process is still training "
                                   f"{Path(args.run_dir).name} (an earlier app's run finishing its last save?); try "
                                   "again in a few seconds")
        trainer = _trainer(args)
    except OSError as e:
        return failed(disk_message(args.run_dir, e) if e.errno else internal_error(e, WHERE))
    except MnistGanError as e:  # bad data, a missing classifier...: the message is for the person who pressed Start
        return failed(str(e))
    except Exception as e:
        return failed(internal_error(e, WHERE))
    from .trainer import interrupts_stop  # with the trainer: TensorFlow loads once the lock is held

    trainer.subscribe(send)
    threading.Thread(target=_obey, args=(trainer,), daemon=True).start()
    try:
        with interrupts_stop(trainer):  # Ctrl-C in the app's terminal reaches this process too: stop, saved
            trainer.run()
    except OSError as e:  # the trainer said "failed" with the raw error; say it in words, and what is kept
        saved = _saved_step(args.run_dir)
        kept = f". Its checkpoint of step {saved} is intact: resume the run once fixed" if saved is not None else ""
        return failed(disk_message(args.run_dir, e) + kept, trainer.step)
    except MnistGanError:
        return 1  # the trainer has published the failure and its message
    except Exception as e:
        return failed(internal_error(e, WHERE), trainer.step)
    finally:
        run_lock.close()
    return 0


def _trainer(args):
    """The run's Trainer: new from the folder's config, or resumed from its checkpoint (the run's authority)."""
    from mnist_gan.data import load_mnist

    from .trainer import open_run

    return open_run(args.run_dir, load_mnist(args.data), None if args.resume else GANConfig.load(args.run_dir))


def _saved_step(run_dir: str) -> int | None:
    try:
        return load_meta(Path(run_dir) / CHECKPOINT_FILE).step
    except (MnistGanError, KeyError):
        return None


def _obey(trainer) -> None:
    """Apply the parent's commands; end of input (the parent went away) stops the run, which saves it."""
    actions = {"pause": trainer.pause, "resume": trainer.resume, "stop": trainer.stop}
    for line in sys.stdin:
        line = line.strip()
        if line in actions:
            actions[line]()
        elif line.startswith("{"):
            try:
                command = json.loads(line)
                if "take" in command:
                    trainer.take(command["take"])
                elif "edit" in command:
                    trainer.edit(command["edit"])
            except (ValueError, TypeError, MnistGanError) as e:  # the parent checked it: only a race lands here
                print(f"ignored command {line[:200]!r}: {e}", file=sys.stderr)
    trainer.stop()


if __name__ == "__main__":
    sys.exit(main())

"""Who may change things on a public Space: with $MNIST_GAN_ADMINS set, only those Hugging Face users may train
or push; everyone may still generate, explore and watch. Unset (a local run), everything is allowed."""

from __future__ import annotations

import os

from .errors import AccessDenied

ADMINS_ENV = "MNIST_GAN_ADMINS"


def admins() -> frozenset[str] | None:
    """The admin user names (lower case) from $MNIST_GAN_ADMINS, read at call time; None: no restriction."""
    value = os.environ.get(ADMINS_ENV, "")
    if not value.strip():
        return None
    # Set but naming nobody (e.g. ","): closed to everyone rather than open, since someone meant to restrict.
    return frozenset(name.strip().lower() for name in value.split(",") if name.strip())


def require_admin(username: str | None, action: str) -> None:
    """Raise AccessDenied unless `username` (the Spaces OAuth login, None when logged out) may do `action`."""
    allowed = admins()
    if allowed is None:
        return
    if not username:
        raise AccessDenied(f"{action} is reserved to this Space's owners: sign in with Hugging Face (Hub tab) "
                           "if you are one. You can still generate, explore and watch the run.")
    if username.strip().lower() not in allowed:
        raise AccessDenied(f"{action} is reserved to this Space's owners, and {username} is not one of them. "
                           "You can still generate, explore and watch the run.")

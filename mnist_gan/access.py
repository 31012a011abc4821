"""Who may change things. On a public Space (SPACE_ID, or SYSTEM=spaces: Hugging Face sets both) only the users named
in $MNIST_GAN_ADMINS may train, push or pull; with none named it is closed to everyone. Everyone may still generate,
explore and watch. Off a Space, with $MNIST_GAN_ADMINS unset (a local run), everything is allowed."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mnist_gan.errors import AccessDenied

ADMINS_ENV = "MNIST_GAN_ADMINS"


@dataclass(frozen=True)
class Visitor:
    """Who asks: their Hugging Face login on a Space (None when signed out or off Spaces) and its token."""

    username: str | None = None
    oauth_token: str | None = None
    client: str = ""  # the address a request came from (ui/limits.py: one the visitor cannot choose)
    page: str = ""  # the page (session) it came from: one of many behind a school's NAT


ANONYMOUS = Visitor()


def on_space(environ=os.environ) -> bool:
    """Whether this process serves a Hugging Face Space."""
    return bool(environ.get("SPACE_ID")) or environ.get("SYSTEM") == "spaces"


def admins() -> frozenset[str] | None:
    """The admin user names (lower case) from $MNIST_GAN_ADMINS, read at call time; None: none configured."""
    value = os.environ.get(ADMINS_ENV, "")
    if not value.strip():
        return None
    # Set but naming nobody (e.g. ","): closed to everyone rather than open, since someone meant to restrict.
    return frozenset(name.strip().lower() for name in value.split(",") if name.strip())


def require_admin(visitor: Visitor, action: str) -> None:
    """Raise AccessDenied unless `visitor` (their Spaces OAuth login; none when logged out) may do `action`."""
    username = visitor.username
    allowed = admins()
    if allowed is None:
        if on_space():  # fail closed: a public Space whose owner named no admin must not let visitors in
            raise AccessDenied(f"{action} is closed on this Space: it has no admins. Its owner can name them in "
                               f"the Space's settings, as the variable {ADMINS_ENV}=their-hf-name (comma-separated "
                               "for several). You can still generate, explore and watch.")
        return
    if not username:
        raise AccessDenied(f"{action} is reserved to this Space's owners: sign in with Hugging Face (the page's "
                           "Hub tab) if you are one; an API or MCP call without that sign-in is anonymous. You can "
                           "still generate, explore and watch the run.")
    if username.strip().lower() not in allowed:
        raise AccessDenied(f"{action} is reserved to this Space's owners, and {username} is not one of them. "
                           "You can still generate, explore and watch the run.")

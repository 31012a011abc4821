"""MNIST_GAN_ADMINS: who may train, push and pull on a public Space (the rule itself; the app is tested through OAuth in
test_app_security.py)."""

import pytest

from mnist_gan.access import ADMINS_ENV, AccessDenied, Visitor, admins, require_admin


def test_unset_or_empty_allows_everyone_off_a_space(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("SYSTEM", raising=False)
    for value in (None, "", "  "):
        if value is None:
            monkeypatch.delenv(ADMINS_ENV, raising=False)
        else:
            monkeypatch.setenv(ADMINS_ENV, value)
        assert admins() is None
        require_admin(Visitor(None), "Starting a training run")
        require_admin(Visitor("anyone"), "Pushing to the Hub")


def test_only_the_named_users_are_allowed_whatever_the_case(monkeypatch):
    monkeypatch.setenv(ADMINS_ENV, " Alice, carol ,")
    assert admins() == {"alice", "carol"}
    require_admin(Visitor("alice"), "Starting a training run")
    require_admin(Visitor("ALICE"), "Starting a training run")
    require_admin(Visitor("Carol"), "Pushing to the Hub")
    with pytest.raises(AccessDenied, match="Stopping training is reserved to this Space's owners, and bob is not one "
                                           "of them. You can still generate, explore and watch the run."):
        require_admin(Visitor("bob"), "Stopping training")
    with pytest.raises(AccessDenied, match="reserved to this Space's owners: sign in with Hugging Face"):
        require_admin(Visitor(None), "Stopping training")
    with pytest.raises(AccessDenied):
        require_admin(Visitor("alice2"), "Stopping training")  # a name, not a prefix


def test_set_but_naming_nobody_closes_rather_than_opens(monkeypatch):
    monkeypatch.setenv(ADMINS_ENV, ", ,")
    assert admins() == frozenset()
    with pytest.raises(AccessDenied):
        require_admin(Visitor("alice"), "Pushing to the Hub")


def test_the_variable_is_read_at_call_time(monkeypatch):
    monkeypatch.setenv(ADMINS_ENV, "alice")
    with pytest.raises(AccessDenied):
        require_admin(Visitor("bob"), "Pushing to the Hub")
    monkeypatch.delenv(ADMINS_ENV)
    require_admin(Visitor("bob"), "Pushing to the Hub")


def test_a_space_is_recognised_and_closed_without_admins(monkeypatch):
    from mnist_gan.access import on_space

    assert not on_space({}) and on_space({"SPACE_ID": "alice/demo"}) and on_space({"SYSTEM": "spaces"})
    monkeypatch.delenv(ADMINS_ENV, raising=False)
    monkeypatch.setenv("SPACE_ID", "alice/demo")
    for user in (None, "alice"):
        with pytest.raises(AccessDenied, match="Pulling from the Hub is closed on this Space: it has no admins. Its "
                                               "owner can name them .* MNIST_GAN_ADMINS=their-hf-name"):
            require_admin(Visitor(user), "Pulling from the Hub")
    monkeypatch.setenv(ADMINS_ENV, "alice")
    require_admin(Visitor("alice"), "Pulling from the Hub")  # named: open to them, and only to them
    with pytest.raises(AccessDenied, match="reserved to this Space's owners"):
        require_admin(Visitor(None), "Pulling from the Hub")

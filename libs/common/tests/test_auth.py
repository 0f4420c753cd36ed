"""Bearer tokens: minted by `tarifa token`, checked by every API."""

from datetime import timedelta

import pytest

from tarifa_common import auth

SECRET = "s" * 48


def test_a_minted_token_names_its_tenant_and_roles() -> None:
    token = auth.mint(SECRET, subject="ana", tenant="acme", roles=["operator", "viewer"])
    principal = auth.verify(token, SECRET)
    assert principal == auth.Principal(subject="ana", tenant="acme", roles=frozenset({"operator", "viewer"}))


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = auth.mint("o" * 48, subject="ana", tenant="acme", roles=["admin"])
    with pytest.raises(auth.InvalidToken, match="not valid"):
        auth.verify(token, SECRET)


def test_an_expired_token_is_refused_with_what_to_do() -> None:
    token = auth.mint(SECRET, subject="ana", tenant="acme", roles=["admin"], ttl=timedelta(seconds=-1))
    with pytest.raises(auth.InvalidToken, match="tarifa token"):
        auth.verify(token, SECRET)


def test_unknown_roles_cannot_be_minted() -> None:
    with pytest.raises(ValueError, match="unknown roles"):
        auth.mint(SECRET, subject="ana", tenant="acme", roles=["root"])


def test_admin_passes_any_role_check_and_others_only_their_own() -> None:
    admin = auth.Principal("a", "acme", frozenset({"admin"}))
    viewer = auth.Principal("v", "acme", frozenset({"viewer"}))
    assert admin.has_any({"operator"})
    assert viewer.has_any({"viewer", "operator"})
    assert not viewer.has_any({"operator"})

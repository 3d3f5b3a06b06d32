"""Repeated wrong passwords lock the user name out, even against the right password."""

import time

import pytest
from django.core.cache import cache

from .conftest import PASSWORD


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def post_login(client, username, password, path="/accounts/login/"):
    return client.post(path, {"username": username, "password": password})


def test_fifty_wrong_passwords_then_the_right_one_is_refused(client, users):
    for _ in range(50):
        response = post_login(client, "op1", "wrong")
        assert response.status_code == 200
    response = post_login(client, "op1", PASSWORD)
    assert response.status_code == 200  # the form again, not a redirect into the site
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_few_mistakes_do_not_lock_and_a_success_clears_them(client, users):
    for _ in range(4):
        post_login(client, "op1", "wrong")
    response = post_login(client, "op1", PASSWORD)
    assert response.status_code == 302
    client.logout()
    for _ in range(4):
        post_login(client, "op1", "wrong")
    assert post_login(client, "op1", PASSWORD).status_code == 302


def test_a_lock_out_ends_after_its_time(client, users, settings):
    settings.EYESCREAM_LOGIN_LOCKOUT_S = 0.5
    for _ in range(5):
        post_login(client, "op1", "wrong")
    assert post_login(client, "op1", PASSWORD).status_code == 200
    time.sleep(0.6)
    assert post_login(client, "op1", PASSWORD).status_code == 302


def test_admin_login_is_throttled_and_lets_in_the_admins_role(client, users):
    assert post_login(client, "boss", PASSWORD, "/admin/login/").status_code == 302
    client.logout()
    for _ in range(5):
        post_login(client, "boss", "wrong", "/admin/login/")
    response = post_login(client, "boss", PASSWORD, "/admin/login/")
    assert response.status_code == 200 and "Too many failed logins" in response.content.decode()
    # an operator is no admin: refused by /admin/'s login (not locked out)
    response = post_login(client, "op1", PASSWORD, "/admin/login/")
    assert response.status_code == 200 and "_auth_user_id" not in client.session

"""No installation shares a secret key, and none is in the code."""

import stat

from eyescream_site.secret_key import load_or_create


def test_a_key_is_made_once_per_data_folder_and_kept_private(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    key = load_or_create(first / "secret_key")
    assert len(key) >= 50
    assert load_or_create(first / "secret_key") == key  # kept across starts
    assert load_or_create(second / "secret_key") != key  # another installation, another key
    assert stat.S_IMODE((first / "secret_key").stat().st_mode) == 0o600


def test_settings_take_no_fixed_key(settings):
    assert "change-me" not in settings.SECRET_KEY
    assert "embedded-dev-key" not in open("eyescream_site/settings.py").read()

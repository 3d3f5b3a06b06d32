"""Accounts keep no tables of their own: roles are Django groups, API tokens are signed."""

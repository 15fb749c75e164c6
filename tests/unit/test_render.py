"""How findings are shown: paths as the migrations folder was given, GitHub annotations escaped."""
from __future__ import annotations

from pathlib import Path

import pytest

from sqlmigrate.render import _github_escape, _github_property, display_path


@pytest.mark.parametrize("directory,path,shown", [
    ("./chk/", Path("chk/001_a/up.sql"), "./chk/001_a/up.sql"),
    ("./chk", Path("chk/001_a/up.sql"), "./chk/001_a/up.sql"),
    ("chk//", Path("chk/001_a/up.sql"), "chk/001_a/up.sql"),
    (".", Path("001_a/up.sql"), "./001_a/up.sql"),
    ("/", Path("/001_a/up.sql"), "/001_a/up.sql"),
    ("../m", Path("../m/bad"), "../m/bad"),
    ("./chk/", Path("001_a/down.sql (stored at apply time)"), "001_a/down.sql (stored at apply time)"),
    (None, Path("chk/001_a/up.sql"), "chk/001_a/up.sql"),
])
def test_display_path(directory, path, shown):
    assert display_path(path, directory) == shown


def test_github_escaping():
    assert _github_property("a%b\r\nc:d,e") == "a%25b%0D%0Ac%3Ad%2Ce"
    assert _github_escape("50% done\r\nnext: a, b") == "50%25 done%0D%0Anext: a, b"

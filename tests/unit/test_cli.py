"""The command line's reading of its own arguments before argparse: --format json and the command's name."""
from __future__ import annotations

import pytest

from sqlmigrate import cli


@pytest.mark.parametrize("argv,wanted", [
    (["up", "--format", "json"], True),
    (["up", "--format=json"], True),
    (["up", "--form", "json"], True),
    (["up", "--format", "text"], False),
    (["up", "--format", "json", "--format", "text"], False),
    (["up", "--", "--format", "json"], False),
    (["up", "--format"], False),
    (["up"], False),
])
def test_wants_json(argv, wanted):
    assert cli._wants_json(argv) is wanted


def test_command_of():
    assert cli._command_of(["up", "--to", "1"]) == "up"
    assert cli._command_of(["--version"]) is None
    assert cli._command_of(["nope"]) is None

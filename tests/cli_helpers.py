"""Helpers shared by the command-line tests: run ``mcland`` in-process, check the
bad-input contract (one line on stderr, exit status 2, nothing written)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcland.cli import main


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path below ``root`` with the file contents (None for directories)."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int | str | None, str, str]:
    """Run ``mcland ARGS`` in-process: (exit code, stdout, stderr)."""
    code: int | str | None = 0
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_bad_input(code: int | str | None, out: str, err: str, *fragments: str) -> str:
    """The bad-input contract; returns the message (after ``mcland: error: ``)."""
    assert code == 2, f"exit status {code!r}, stderr: {err!r}"
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert err.startswith("mcland: error: "), err
    assert out == ""
    msg = err.removeprefix("mcland: error: ").rstrip("\n")
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    return msg


def refused(capsys, root: Path, *args: object, fragments: tuple[str, ...] = ()) -> str:
    """``mcland ARGS`` is refused and nothing below ``root`` changes."""
    before = tree(root)
    code, out, err = cli(capsys, *args)
    msg = assert_bad_input(code, out, err, *fragments)
    assert tree(root) == before
    return msg

"""Print one of the README's quick-start commands: ``python3 .ci/quickstart.py README.md N``.

The README holds exactly one fenced ```bash block directly under a line
``<!-- quickstart -->``; it has two command lines, 1 = the main job, 2 = the tests.
``.ci/run`` runs them, so the README is the single source of both.  Anything else is an
error (exit status 1, message on stderr): CI must not silently run nothing.
"""

import sys
from pathlib import Path

MARKER = "<!-- quickstart -->"
N_COMMANDS = 2


def commands(text: str) -> list[str]:
    lines = text.splitlines()
    at = [i for i, line in enumerate(lines) if line.strip() == MARKER]
    if not at:
        raise ValueError(f"README has no {MARKER} block")
    if len(at) > 1:
        raise ValueError(f"README has {len(at)} {MARKER} lines, expected one")
    i = at[0] + 1
    if i >= len(lines) or lines[i].strip() != "```bash":
        raise ValueError(f"the line after {MARKER} must open a ```bash block")
    body = []
    for line in lines[i + 1 :]:
        if line.strip() == "```":
            break
        body.append(line)
    else:
        raise ValueError(f"the ```bash block under {MARKER} is not closed")
    cmds = [line.strip() for line in body if line.strip()]
    if len(cmds) != N_COMMANDS:
        raise ValueError(f"the {MARKER} block has {len(cmds)} commands, expected {N_COMMANDS}")
    return cmds


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in {str(k) for k in range(1, N_COMMANDS + 1)}:
        print(f"usage: quickstart.py README.md N   (N = 1..{N_COMMANDS})", file=sys.stderr)
        return 2
    try:
        cmds = commands(Path(argv[0]).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"quickstart.py: {argv[0]}: {e}", file=sys.stderr)
        return 1
    print(cmds[int(argv[1]) - 1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

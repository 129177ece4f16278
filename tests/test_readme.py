"""Every fenced ```python and ```bash block of the README runs as written, so the README cannot drift.

Each block runs on its own in a fresh subprocess and an empty temporary working folder, with the repository on
PYTHONPATH (Python blocks as a script, bash blocks with `set -euo pipefail`). A block is skipped, with its reason,
when the line right before it is `<!-- readme-test: skip (reason) -->`; in bash blocks, `pip install …` commands and
the test command itself are left out (CI runs them). Any other block must exit with status 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BLOCK_TIMEOUT_S = 300
FENCE = re.compile(r"^```(\w*)\s*$")
SKIP_MARKER = re.compile(r"^<!--\s*readme-test:\s*skip\s*\((?P<reason>.+)\)\s*-->\s*$")
CI_RUNS_THEM = re.compile(r"^(pip install\b|python -m pytest\b)")


@dataclass(frozen=True)
class Block:
    language: str
    line: int  # 1-based line of the opening fence
    code: str
    skip_reason: str | None

    @property
    def name(self) -> str:
        return f"README.md:{self.line}:{self.language}"


def readme_blocks(text: str) -> list[Block]:
    """The fenced python and bash blocks, each with the skip reason given right before it (if any)."""
    lines = text.splitlines()
    blocks, position = [], 0
    while position < len(lines):
        opening = FENCE.match(lines[position])
        if not opening:
            position += 1
            continue
        end = next(i for i in range(position + 1, len(lines)) if lines[i].startswith("```"))
        previous = next((lines[i] for i in range(position - 1, -1, -1) if lines[i].strip()), "")
        marker = SKIP_MARKER.match(previous.strip())
        if opening.group(1) in ("python", "bash"):
            code = "\n".join(lines[position + 1 : end]) + "\n"
            blocks.append(Block(opening.group(1), position + 1, code, marker and marker.group("reason")))
        position = end + 1
    return blocks


def shell_commands(code: str) -> list[str]:
    """A bash block's commands, continuation lines joined."""
    commands, current = [], ""
    for line in code.splitlines():
        current += line
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip():
            commands.append(current.strip())
        current = ""
    return commands


def script_of(block: Block) -> tuple[str, list[str]]:
    """The script to run for a bash block and the commands left out of it (CI runs them)."""
    commands = shell_commands(block.code)
    left_out = [c for c in commands if CI_RUNS_THEM.match(c)]
    kept = [c for c in commands if not CI_RUNS_THEM.match(c)]
    return "set -euo pipefail\n" + "\n".join(kept) + "\n", left_out


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def test_readme_has_runnable_blocks():
    assert sum(b.skip_reason is None for b in BLOCKS) >= 5, [b.name for b in BLOCKS]


def test_skip_markers_stand_before_blocks():
    """A marker is only honoured right before a block: one anywhere else is a typo that would silently run."""
    lines = README.read_text(encoding="utf-8").splitlines()
    marker_lines = [i + 1 for i, line in enumerate(lines) if line.startswith("<!--") and "readme-test" in line]
    marked = set()
    for block in BLOCKS:
        if block.skip_reason:
            marked.add(next(i for i in range(block.line - 1, 0, -1) if lines[i - 1].strip()))
    assert sorted(marked) == marker_lines


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name)
def test_readme_block_runs(block: Block, tmp_path: Path):
    if block.skip_reason:
        pytest.skip(block.skip_reason)
    if block.language == "python":
        script = tmp_path / "block.py"
        script.write_text(block.code, encoding="utf-8")
        command = [sys.executable, str(script)]
    else:
        text, left_out = script_of(block)
        if text.strip() == "set -euo pipefail":
            pytest.skip(f"CI runs them: {'; '.join(left_out)}")
        script = tmp_path / "block.sh"
        script.write_text(text, encoding="utf-8")
        command = ["bash", str(script)]
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "MPLBACKEND": "Agg",
    }
    completed = subprocess.run(
        command, cwd=work, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S, check=False
    )
    assert completed.returncode == 0, (
        f"{block.name} failed with status {completed.returncode}:\n{block.code}\n"
        f"--- stdout ---\n{completed.stdout[-4000:]}\n--- stderr ---\n{completed.stderr[-4000:]}"
    )

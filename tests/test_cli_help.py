"""The command line's help reads as help: flags without type labels, and --version."""

from __future__ import annotations

import re

import pytest
import typer.main
from typer.testing import CliRunner

import audioembed
from audioembed.cli import app

COMMANDS = sorted(typer.main.get_command(app).commands)


def render_help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


def option_rows(text: str) -> dict[str, str]:
    """Each option's help row by its first --name (rich's table, one row per option)."""
    return {m.group(1): line for line in text.splitlines() if (m := re.search(r"(?:^|[\s│*])(--[a-z][\w-]*)", line))}


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_shows_no_type_label_on_flags(command):
    """Typer 0.2x printed `--frames <bool>` and `--help <bool>`, as if a flag took a value."""
    args = [command] if command else []
    text = render_help(*args)
    group = typer.main.get_command(app)
    cmd = group.commands[command] if command else group
    flags = [p.opts[0] for p in cmd.params if getattr(p, "is_flag", False) and p.opts[0].startswith("--")] + ["--help"]
    rows = option_rows(text)
    for flag in flags:
        assert flag in rows, (flag, text)
        assert not re.search(r"<\w+>", rows[flag]), rows[flag]
    assert "<bool>" not in text
    # options that take a value still say what kind
    valued = [p.opts[0] for p in cmd.params if p.param_type_name == "option" and not getattr(p, "is_flag", False)
              and p.opts[0].startswith("--")]
    assert all(re.search(r"<[\w \[\]|]+>", rows[v]) for v in valued), [rows[v] for v in valued]


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"audioembed {audioembed.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", audioembed.__version__)


def test_pretrain_help_lists_at_most_18_options():
    """Issue 38: `pretrain --help` shows the settings users change; every other one is a --config key."""
    group = typer.main.get_command(app)
    command = group.commands["pretrain"]
    options = [p for p in command.get_params(command.context_class(command, info_name="pretrain", parent=None))
               if p.param_type_name == "option"]
    assert len(options) <= 18, [p.opts[0] for p in options]
    assert {"--help", "--device", "--config"} <= set(option_rows(render_help("pretrain")))

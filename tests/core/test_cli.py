"""The command line: help texts, listing commands, one-line errors."""

from __future__ import annotations

import pytest

from siri_bench.cli import main
from siri_bench.commands import COMMANDS


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_subcommand_describes_itself(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"siri-bench {command}" in out
    # a description beyond the usage line
    assert len(out.strip().splitlines()) > 2


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "COMMAND" in capsys.readouterr().out


def test_bad_argument_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error: the following arguments are required: config" in err
    assert "Traceback" not in err


def test_missing_config_file_is_one_line(capsys, tmp_path):
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: config file") and "does not exist" in err
    assert len(err.splitlines()) == 1


def test_algos_lists_one_per_line_with_description(capsys):
    assert main(["algos"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    for line in lines:
        name, _, desc = line.partition("\t")
        assert name and desc, line


def test_cli_starts_without_heavy_imports():
    """`siri-bench --help` must stay fast: building the parser imports no ML or engine library."""
    import subprocess
    import sys

    code = ("import sys; from siri_bench.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'transformers', 'textworld', 'spacy', 'pandas') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_overrides_after_an_option_are_taken_and_unknown_options_refused(capsys, tmp_path):
    config = "configs/gigpo_alfworld_tiny.yaml"
    assert main(["run", config, "--dry-run", f"output_dir={tmp_path}", "seeds=[3]"]) == 0
    out = capsys.readouterr().out
    assert "gigpo-alfworld-s3" in out and str(tmp_path) in out
    with pytest.raises(SystemExit) as exc:
        main(["run", config, "--dry-run", "--bogus"])
    assert exc.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err

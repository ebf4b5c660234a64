"""``python -m prefalign_lite``: every subcommand is registered with argparse and dispatched to a
handler of its own; an unknown subcommand is argparse's error (exit status 2), never a fall-through."""
import re

import pytest

from prefalign_lite import __main__ as cli

COMMANDS = ["run", "run-notebooks", "lr-grid", "sr-lambda", "make-fixture", "links", "bench", "gpu-check", "real-size"]


def _subcommands() -> dict:
    sub = next(a for a in cli._parser()._actions if a.dest == "command")
    return dict(sub.choices)


@pytest.mark.parametrize("argv", [["no-such-command"], ["run-notebook"], []])
def test_an_unknown_or_missing_subcommand_exits_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "usage: python -m prefalign_lite" in capsys.readouterr().err


def test_every_subcommand_has_its_own_handler_and_is_in_the_docstring():
    parsers = _subcommands()
    assert list(parsers) == COMMANDS
    for name, parser in parsers.items():
        assert callable(parser.get_default("handler")), name
        assert re.search(rf"python -m prefalign_lite {re.escape(name)}(\s|$)", cli.__doc__), name
    assert parsers["links"].get_default("logs") is False and parsers["run"].get_default("logs") is True


def test_a_bad_flag_value_is_argparse_s_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--jobs", "many"])
    assert exc.value.code == 2 and "--jobs takes an integer or 'auto', got 'many'" in capsys.readouterr().err


def test_run_notebooks_dispatches_to_its_handler(capsys):
    assert cli.main(["run-notebooks", "--only", "zz-no-such-notebook"]) == 1
    assert capsys.readouterr().err.strip() == "no notebooks to run"

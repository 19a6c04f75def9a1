"""Every command in the README (and docs/*.md) parses as written: the module exists and takes those flags.

Each `python train.py ...` and `python -m <module> ...` line of the README's code blocks (with
`horovodrun -np N` in front or not) is run up to its argument parsing, in this process: parse_args is
wrapped to stop right after it succeeds, so nothing is trained, read or written. A renamed module, a
flag that no longer exists or a missing required argument fails the test with the README line.
"""

import argparse
import os
import re
import runpy
import shlex
import sys

import pytest

from tests.runs import ROOT


def readme_commands():
    """The commands of README.md and of the pages in docs/ it links to."""
    text = ""
    for path in ["README.md"] + sorted(os.path.join("docs", n) for n in os.listdir(os.path.join(ROOT, "docs"))
                                       if n.endswith(".md")):
        with open(os.path.join(ROOT, path)) as f:
            text += f.read() + "\n"
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        lines += block.replace("\\\n", " ").splitlines()
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    # Commands in the prose and tables (a bare `python -m module` there names a tool, it is no command).
    lines += re.findall(r"`((?:horovodrun|python) [^`]+)`", text)
    commands = []
    for line in lines:
        line = line.split("  #")[0].strip()
        match = re.match(r"^(?:horovodrun -np \S+ )?python (train\.py|-m [\w.]*\w)(\s.*|)$", line)
        if match and match.group(2).strip() and (match.group(1), match.group(2).strip(), line) not in commands:
            commands.append((match.group(1), match.group(2).strip(), line))
    return commands


COMMANDS = readme_commands()


class Parsed(Exception):
    pass


def test_the_readme_has_commands_to_check():
    targets = {target for target, _, _ in COMMANDS}
    assert "train.py" in targets and "-m glow_tf.tools.evaluate" in targets and "-m tfrecords_tools.verify" in targets


@pytest.mark.filterwarnings("ignore:.*found in sys.modules after import of package:RuntimeWarning")  # runpy
@pytest.mark.parametrize("target, args, line", COMMANDS, ids=[c[2][:70] for c in COMMANDS])
def test_a_readme_command_parses_as_written(target, args, line, monkeypatch):
    # Optional parts written as [--flag value] become plain arguments; alternatives {a,b} and a|b take
    # the first.
    args = re.sub(r"\{([^{},]*),[^{}]*\}", r"\1", args.replace("[", "").replace("]", ""))
    argv = [a.split("|")[0] for a in shlex.split(args)]
    real = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        real(self, args, namespace)
        raise Parsed()

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    if target == "train.py":
        monkeypatch.setattr(sys, "argv", ["train.py", *argv])
        run = lambda: runpy.run_path(os.path.join(ROOT, "train.py"), run_name="__main__")  # noqa: E731
    else:
        module = target.split(" ", 1)[1]
        monkeypatch.setattr(sys, "argv", [module, *argv])
        run = lambda: runpy.run_module(module, run_name="__main__", alter_sys=True)  # noqa: E731
    try:
        run()
    except Parsed:
        return
    except SystemExit as exit_:  # argparse refused the arguments (its message is on stderr), or --help
        if exit_.code == 0 and "--help" in argv:
            return
        pytest.fail(f"README command does not parse (exit {exit_.code}): {line}")
    pytest.fail(f"README command ran without parsing arguments: {line}")

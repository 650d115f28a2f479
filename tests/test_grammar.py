"""One option grammar across every command (issue 17), read from the click app itself.

The table of every option (celerytool.cli.grammar.option_rows) must agree with itself: the same
long name has the same short flag and the same kind of value and range in every command; a short
flag means one long name; a name that two commands share is in the grammar (with its meaning);
hidden options are only the listed old spellings.  Then the behaviour that a table cannot show:
one duration grammar and one error wording, connection options documented once.
"""

from __future__ import annotations

import re
from collections import defaultdict

import click
import pytest
from click.testing import CliRunner

from celerytool.cli import COMMANDS, cli
from celerytool.cli.grammar import ALIASES, GRAMMAR, REMOVED, commands, option_rows
from celerytool.cli.options import ConnectionOption, Duration

ROWS = option_rows()
VISIBLE = [r for r in ROWS if not r.hidden]


def test_the_table_covers_every_command():
    assert {r.command for r in ROWS} >= set(COMMANDS) - {"help", "profiles"}
    assert len(VISIBLE) > 100


def test_a_long_name_has_one_short_flag_and_one_kind_of_value():
    seen = defaultdict(set)
    for r in VISIBLE:
        canonical = GRAMMAR.get(r.long)
        shorts = tuple(s for s in r.shorts if not canonical or s not in canonical.also)
        seen[r.long].add((shorts, r.value))
    differing = {name: sorted(ways) for name, ways in seen.items() if len(ways) > 1}
    assert not differing, f"the same option spelled differently in two commands: {differing}"


def test_shared_names_are_in_the_grammar_and_follow_it():
    users = defaultdict(set)
    for r in VISIBLE:
        users[r.long].add(r.command)
    unregistered = {n: sorted(c) for n, c in users.items() if len(c) > 1 and n not in GRAMMAR}
    assert not unregistered, f"shared by several commands but not in cli/grammar.py GRAMMAR: {unregistered}"
    for r in VISIBLE:
        spec = GRAMMAR.get(r.long)
        if spec is None:
            continue
        want = {spec.short} if spec.short else set()
        assert set(r.shorts) - set(spec.also) == want, (r.command, r.long, r.shorts, spec.short)
        assert r.value == spec.value, (r.command, r.long, r.value, spec.value)


def test_a_short_flag_means_one_long_name_everywhere():
    longs = defaultdict(set)
    for r in ROWS:
        if (r.command, r.long) in ALIASES:
            continue
        for s in r.shorts:
            longs[s].add(r.long)
    for decls, _ in __import__("celerytool.cli.options", fromlist=["SHARED"]).SHARED:
        long = [d for d in decls if d.startswith("--")][0]
        for s in (d for d in decls if d.startswith("-") and not d.startswith("--")):
            longs[s].add(long)
    clashes = {s: sorted(n) for s, n in longs.items() if len(n) > 1}
    assert not clashes, f"one short flag, several meanings: {clashes}"


def test_grammar_short_flags_are_not_used_for_anything_else():
    reserved = {spec.short: name for name, spec in GRAMMAR.items() if spec.short}
    for r in ROWS:
        for s in r.shorts:
            if s in reserved and (r.command, r.long) not in ALIASES:
                assert r.long == reserved[s], (r.command, r.long, s)


def test_hidden_options_are_only_old_spellings():
    hidden = {(r.command, r.long.split("/")[0]) for r in ROWS if r.hidden}
    assert hidden == set(ALIASES) | set(REMOVED)
    for (command, _), replacement in {**ALIASES, **REMOVED}.items():
        assert any(r.command == command and r.long == replacement and not r.hidden for r in ROWS)


def test_all_means_every_message_or_result_and_internal_means_plumbing():
    for r in VISIBLE:
        if r.long == "--all":
            assert re.search(r"\bevery\b", r.help, re.I) and "pidbox" not in r.help, r
        if r.long == "--internal":
            assert "pidbox" in r.help, r
    assert {r.command for r in VISIBLE if r.long == "--internal"} == {"queues", "bindings", "metrics"}


def test_older_than_is_offered_only_where_an_age_is_known():
    offering = {r.command for r in VISIBLE if r.long == "--older-than"}
    assert offering == {"unacked", "requeue", "forget", "expire"}


def test_ages_intervals_and_timeouts_are_durations():
    named = re.compile(r"timeout|older|since|idle|interval|ttl|countdown|time-limit|wait$|lock-wait")
    for r in VISIBLE:
        if named.search(r.long) and r.value != "flag":
            assert r.value.startswith("DURATION"), (r.command, r.long, r.value)


def _duration_options():
    for name, cmd in commands():
        for p in cmd.params:
            if isinstance(p, click.Option) and isinstance(p.type, Duration) and not p.hidden:
                yield name, cmd, p


def _args_for(cmd, option, value):
    """A command line reaching option parsing: a dummy for every argument, the option last."""
    args = []
    for p in cmd.params:
        if isinstance(p, click.Argument):
            if isinstance(p.type, click.Choice):
                args.append(p.type.choices[0])
            elif isinstance(p.type, click.File):
                args.append("-")
            else:
                args.append("x")
    extra = ["--ttl", "1d"] if cmd.name == "expire" and option != "--ttl" else []
    return [cmd.name, *args, *extra, option, value]


DURATION_OPTIONS = sorted((n, p.opts[-1]) for n, _, p in _duration_options())


@pytest.mark.parametrize(("command", "option"), DURATION_OPTIONS)
def test_a_bad_duration_is_one_usage_error_with_one_wording(command, option):
    cmd = cli.get_command(click.Context(cli), command)
    r = CliRunner().invoke(cli, _args_for(cmd, option, "1x5"))
    assert r.exit_code == 2, r.output
    assert f"Invalid value for '{option}'" in r.output or "Invalid value for" in r.output
    assert "not a duration: '1x5' (e.g. 90, 90s, 1h30m, 2d, 500ms)" in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("1h30m", 5400), ("2d", 172800), ("500ms", 0.5), ("1.5", 1.5), ("1w", 604800),
])
def test_every_duration_reads_the_same_spellings(text, seconds):
    for _, _, p in _duration_options():
        t = p.type
        if t.minimum <= seconds and (t.maximum is None or seconds <= t.maximum):
            assert t.convert(text, p, None) == seconds


def test_out_of_range_durations_say_the_range():
    cmd = cli.get_command(click.Context(cli), "inspect")
    r = CliRunner().invoke(cli, _args_for(cmd, "--timeout", "2d"))
    assert r.exit_code == 2 and "'2d' is out of range: from 50ms to 1d" in r.output


def test_every_timeout_has_the_short_flag_and_one_range():
    rows = [r for r in VISIBLE if r.long == "--timeout"]
    assert {r.command for r in rows} >= {"send", "result", "events", "inspect", "revoke", "workers"}
    assert {(r.shorts, r.value) for r in rows} == {(("-t",), GRAMMAR["--timeout"].value)}


def _help(*args):
    r = CliRunner().invoke(cli, [*args, "--help"], terminal_width=100)
    assert r.exit_code == 0, r.output
    return r.output


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"help"}))
def test_command_help_shows_its_own_options_and_points_at_the_connection_options(command):
    text = _help(command)
    assert "celerytool help connection" in text
    for flag in ("--broker", "--backend", "--keyprefix", "--sep", "--priority-steps", "--management-url",
                 "--master-name", "--profile", "--connect-timeout"):
        assert not re.search(rf"^\s+(-\w, )?{flag}(?![\w-])", text, re.M), f"{command} --help lists {flag}"
    assert "Connection options (before" not in text
    if command != "export":
        assert re.search(r"^\s+-o, --output", text, re.M)
    assert "README" not in text


def test_root_help_documents_the_connection_options_once_and_every_exit_code():
    text = _help()
    for flag in ("--broker", "--backend", "--profile", "--connect-timeout", "--output", "--max-size"):
        assert len(re.findall(rf"^\s+(-\w, )?{flag}(?![\w-])", text, re.M)) == 1, flag
    codes = re.search(r"Exit codes:(.*?)(\n\n|$)", text, re.S).group(1)
    from celerytool.errors import ExitCode

    for code in ExitCode:
        assert re.search(rf"\b{int(code)}\b", codes), f"exit code {int(code)} missing from --help"


def test_decode_does_not_show_the_broker_only_options():
    text = _help("decode")
    assert "--max-size" in text and "--sep" not in text and "--backend" not in text


def test_connection_options_still_work_after_the_command():
    r = CliRunner().invoke(cli, ["decode", "--sep", "\\x06\\x16", "-b", "redis://x/0"], input=b"")
    assert r.exit_code == 2 and "nothing to decode" in r.output


def test_connection_option_classes_are_shared():
    for _, cmd in commands():
        shared = [p for p in cmd.params if isinstance(p, ConnectionOption)]
        if cmd.name != "help":
            assert {p.name for p in shared} >= {"broker", "backend", "profile"}, cmd.name


def test_old_spellings_still_work_for_one_release_and_say_so():
    # a broker nobody answers on: the option is parsed, the deprecation said, then exit 69
    from services import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    r = CliRunner().invoke(cli, ["events", "--count", "3", "-b", url, "--connect-timeout", "0.2"])
    assert r.exit_code == 69 and "-n/--limit" in r.output, r.output
    r = CliRunner().invoke(cli, ["events", "-n", "3", "-b", url, "--connect-timeout", "0.2"])
    assert r.exit_code == 69 and "--count" not in r.output, r.output


def test_repeatable_names_are_repeatable_everywhere_but_the_listed_ones():
    from celerytool.cli.grammar import NOT_REPEATABLE_YET

    single = set()
    for r in VISIBLE:
        spec = GRAMMAR.get(r.long)
        if spec is not None and spec.repeatable is not None and r.repeatable != spec.repeatable:
            single.add((r.command, r.long))
    assert single == set(NOT_REPEATABLE_YET), f"new: {single - NOT_REPEATABLE_YET}, fixed: {NOT_REPEATABLE_YET - single}"

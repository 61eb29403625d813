import pytest

from vla_ros.logic.commands import STOP, CommandKind, InvalidCommand, parse_command


@pytest.mark.parametrize(
    "raw",
    ["stop", "STOP", "Halt", "freeze!", "please stop now", "robot, HALT.", "  Freeze  ", "stop it"],
)
def test_stop_words_alone_or_in_a_sentence_make_a_stop(raw):
    command = parse_command(raw)
    assert command.kind is CommandKind.STOP
    assert command.text == STOP
    assert command.is_stop


@pytest.mark.parametrize("raw", ["go to the stopwatch", "unstoppable", "defrost the freezer"])
def test_words_that_merely_contain_a_stop_word_are_instructions(raw):
    assert parse_command(raw).kind is CommandKind.INSTRUCTION


def test_instruction_is_trimmed_folded_and_lower_cased():
    command = parse_command("  Go to\tthe   RED\n cube  ")
    assert command.kind is CommandKind.INSTRUCTION
    assert command.text == "go to the red cube"


def test_control_characters_become_spaces():
    assert parse_command("go\x00to\x1bthe cube").text == "go to the cube"


def test_bytes_are_decoded_as_utf8():
    assert parse_command("gehe zum grünen Würfel".encode()).text == "gehe zum grünen würfel"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   \t\n", "empty"),
        (b"go to the \xff\xfe cube", "UTF-8"),
        ("x" * 100_000, "exceeds"),
        (b"y" * 100_000, "exceeds"),
        ("z" * 501, "exceeds"),
    ],
)
def test_invalid_commands_are_refused_with_a_reason(raw, reason):
    with pytest.raises(InvalidCommand, match=reason):
        parse_command(raw)


def test_length_cap_is_configurable():
    assert parse_command("a" * 20, max_chars=20).text == "a" * 20
    with pytest.raises(InvalidCommand):
        parse_command("a" * 21, max_chars=20)

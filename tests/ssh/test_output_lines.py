import pytest

from app.ssh.output import TRUNCATED_MARKER, OutputLines


def test_partial_lines_are_buffered_until_complete():
    lines = OutputLines()
    assert lines.feed(b"hel") == []
    assert (lines.offset, lines.read_offset) == (0, 3)
    assert lines.feed(b"lo\nwor") == ["hello"]
    assert (lines.offset, lines.read_offset, lines.consumed) == (6, 9, 6)
    assert lines.feed(b"ld\n\nlast") == ["world", ""]
    assert lines.offset == 13
    assert lines.feed(b"", final=True) == ["last"]
    assert lines.offset == lines.read_offset == 17


def test_resume_from_persisted_offset_emits_each_line_once():
    stream = b"one\ntwo\nthr" + b"ee\nfour"
    first = OutputLines()
    emitted = first.feed(stream[:11])
    persisted = first.offset  # on a line boundary: the partial "thr" is not counted
    assert emitted == ["one", "two"] and persisted == 8
    # Restart: a new instance reads again from the persisted offset.
    second = OutputLines(offset=persisted)
    assert second.read_offset == 8
    emitted += second.feed(stream[second.read_offset :], final=True)
    assert emitted == ["one", "two", "three", "four"]
    assert second.offset == len(stream) and second.consumed == len(stream) - 8


def test_crlf_and_carriage_return_redraws():
    lines = OutputLines()
    assert lines.feed(b"a\r\nb\r") == ["a"]
    assert lines.feed(b"\n 10%\r 50%\r100%\r\n") == ["b", "100%"]


def test_invalid_utf8_is_replaced_and_split_characters_survive_chunking():
    lines = OutputLines()
    snow = "☃".encode()
    assert lines.feed(b"bad \xff\xfe x\n" + snow[:1]) == ["bad \ufffd\ufffd x"]
    assert lines.feed(snow[1:] + b"\n") == ["☃"]


def test_long_lines_are_truncated():
    lines = OutputLines(max_chars=10)
    out = lines.feed(b"x" * 25 + b"\nshort\n")
    assert out == ["x" * 10 + TRUNCATED_MARKER, "short"]
    assert OutputLines().feed(b"y" * 1000 + b"\n") == ["y" * 1000]
    assert OutputLines().feed(b"y" * 1001 + b"\n") == ["y" * 1000 + TRUNCATED_MARKER]


def test_huge_line_without_newline_is_split_deterministically():
    stream = b"z" * 250 + b"\nend\n"
    whole = OutputLines(max_line_bytes=100, max_chars=1000)
    expected = whole.feed(stream)
    assert expected == ["z" * 100, "z" * 100, "z" * 50, "end"]
    chunked = OutputLines(max_line_bytes=100, max_chars=1000)
    got = []
    for i in range(0, len(stream), 7):
        got += chunked.feed(stream[i : i + 7])
        assert chunked.read_offset - chunked.offset <= 100  # bounded buffer
    assert got == expected and chunked.offset == len(stream)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        OutputLines(offset=-1)

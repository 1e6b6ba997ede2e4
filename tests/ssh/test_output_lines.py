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


def test_huge_line_is_one_line_whatever_the_chunking():
    stream = b"z" * 250 + b"\nend\n" + b"w" * 100 + b"\n"
    whole = OutputLines(max_line_bytes=100, max_chars=1000)
    expected = whole.feed(stream)
    assert expected == ["z" * 100 + TRUNCATED_MARKER, "end", "w" * 100]
    for step in (1, 7, 100, 101):
        chunked = OutputLines(max_line_bytes=100, max_chars=1000)
        got = []
        for i in range(0, len(stream), step):
            got += chunked.feed(stream[i : i + step])
            assert chunked.read_offset - chunked.offset <= 100  # bounded buffer
        assert got == expected and chunked.offset == len(stream)


def test_starting_inside_a_long_line_skips_to_its_end():
    lines = OutputLines(offset=500, mid_line=True, max_line_bytes=100)
    assert lines.feed(b"z" * 300) == [] and lines.mid_line and lines.offset == 800
    assert lines.feed(b"zz\nnext\n") == ["next"] and not lines.mid_line
    assert lines.offset == 800 + len(b"zz\nnext\n")
    tail = OutputLines(mid_line=True)
    assert tail.feed(b"rest of it", final=True) == [] and tail.offset == len(b"rest of it")


def test_invalid_arguments():
    with pytest.raises(ValueError):
        OutputLines(offset=-1)


def test_nul_and_control_characters_become_replacement_characters():
    lines = OutputLines()
    out = lines.feed(b"a\x00b\x07c\x7fd \xc2\x85f\tg \x1b\n")
    assert out == ["a\ufffdb\ufffdc\ufffdd \ufffdf\tg \ufffd"]


def test_terminal_escapes_are_dropped_whole():
    lines = OutputLines()
    out = lines.feed(b"\x1b[1;32mok\x1b[0m \x1b]0;title\x07done \x1b(Bx\n", final=True)
    assert out == ["ok done x"]


def test_any_bytes_make_valid_text():
    import json
    import random

    rng = random.Random(7)
    data = bytes(rng.randrange(256) for _ in range(20000))
    lines = OutputLines(max_line_bytes=512)
    out = lines.feed(data, final=True)
    assert out and lines.offset == len(data)
    for line in out:
        assert "\x00" not in line
        json.dumps(line).encode("utf-8")  # JSON, and encodable: no lone surrogates

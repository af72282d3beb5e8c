"""One atomic write and one TOML reader for every file of a home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from magray.errors import ConfigError
from magray.fileio import atomic_path, read_toml, write_atomic, write_toml


def test_write_atomic_replaces_whole_and_keeps_or_sets_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "notes.txt"
    write_atomic(target, "one\r\ntwo\n")
    assert target.read_bytes() == b"one\r\ntwo\n"  # written as is, no newline translation
    target.chmod(0o640)
    write_atomic(target, "three")
    assert target.read_text() == "three" and target.stat().st_mode & 0o777 == 0o640
    secret = tmp_path / "keys.toml"
    write_toml(secret, {"openai": "sk-x"}, mode=0o600)
    assert secret.stat().st_mode & 0o777 == 0o600
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_a_rename_never_replaces_what_is_not_a_regular_file(tmp_path: Path) -> None:
    import stat

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        write_atomic(fifo, "x")
    with pytest.raises(OSError, match="not a regular file"), atomic_path(fifo) as tmp:
        tmp.write_text("x")
    with pytest.raises(OSError, match="not a regular file"):
        write_atomic(tmp_path, "x")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(os.listdir(tmp_path)) == ["magray-home", "pipe"]


def test_read_toml_missing_and_broken(tmp_path: Path) -> None:
    assert read_toml(tmp_path / "none.toml") == {}
    bad = tmp_path / "bad.toml"
    bad.write_text("[search\n")
    with pytest.raises(ConfigError, match=r"bad.toml is not valid TOML .*; fix or remove the file"):
        read_toml(bad)
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_toml(bad, "fix or delete it")


def test_atomic_path_puts_the_file_in_place_only_when_the_block_succeeds(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "export.jsonl"
    with atomic_path(target) as tmp, tmp.open("w", encoding="utf-8") as fh:
        assert tmp.parent == target.parent and tmp.name == f".export.jsonl.{os.getpid()}.tmp"
        fh.write("one\n")
        assert not target.exists()  # nothing is visible before the block ends
    assert target.read_text() == "one\n"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("the writer failed")
    assert target.read_text() == "one\n"  # the old file stays whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["export.jsonl"]  # no temp left


def test_rewriting_a_commented_toml_file_keeps_the_old_one_beside_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`config set`, `keys set`, `policy allow`, `mcp add` dropped a hand-edited file's
    comments without a word."""
    path = tmp_path / "keys.toml"
    mine = '# work account\nopenai = "sk-1"  # rotate in May\n'
    path.write_text(mine, encoding="utf-8")
    path.chmod(0o600)
    write_toml(path, {"openai": "sk-1", "anthropic": "sk-2"}, mode=0o600)
    keep = tmp_path / "keys.toml.bak"
    assert keep.read_text(encoding="utf-8") == mine
    assert keep.stat().st_mode & 0o777 == 0o600
    assert "had comments" in caplog.text and str(keep) in caplog.text
    assert read_toml(path, "fix it") == {"openai": "sk-1", "anthropic": "sk-2"}
    caplog.clear()
    write_toml(path, {"openai": "sk-3"})  # nothing to keep now: the .bak stays as it was
    assert keep.read_text(encoding="utf-8") == mine and caplog.text == ""
    plain = tmp_path / "plain.toml"
    plain.write_text('url = "http://h/#frag"\n', encoding="utf-8")
    write_toml(plain, {"url": "x"})
    assert not (tmp_path / "plain.toml.bak").exists()


@pytest.mark.parametrize(
    ("text", "commented"),
    [
        ('name = "a #1 pick"\n', False),  # a " #" inside a basic string is text
        ("name = 'a #1 pick'\n", False),
        ('"key #1" = 1\n', False),  # a quoted key
        ('name = "say \\"hi\\" #1"\n', False),  # escaped quotes do not end the string
        ('notes = """\nline # one\n"""\n', False),
        ("notes = '''\nline # one\n'''\n", False),
        ('notes = """a ""quoted"" # b"""\n', False),
        ('tags = ["#a", "b #c"]\n', False),
        ('path = "C:\\\\dir\\\\" # the last backslash is escaped\n', True),
        ('name = "x"# tight\n', True),
        ('name = "x"  # loose\n', True),
        ("  # indented\nname = 1\n", True),
        ('notes = """\n"""  # after a multi-line string\n', True),
        ("[section] # a table\n", True),
    ],
)
def test_only_a_hash_outside_strings_is_a_comment(text: str, commented: bool) -> None:
    import tomllib

    from magray.fileio import has_toml_comment

    tomllib.loads(text)  # every case is valid TOML
    assert has_toml_comment(text) is commented


def test_rewriting_a_file_with_a_hash_in_a_string_makes_no_backup(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[llm.providers.work]\nname = "team #2 server"\n', encoding="utf-8")
    write_toml(path, {"llm": {"default": "work"}})
    assert not (tmp_path / "config.toml.bak").exists() and caplog.text == ""


def test_toml_written_from_values_never_reads_as_commented() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    import tomli_w
    from hypothesis import strategies as st

    from magray.fileio import has_toml_comment

    text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
    values = st.dictionaries(
        text, text | st.lists(text, max_size=3) | st.dictionaries(text, text, max_size=3)
    )

    @hypothesis.given(values)
    @hypothesis.settings(max_examples=300, deadline=None)
    def check(data: dict[str, object]) -> None:
        assert not has_toml_comment(tomli_w.dumps(data))

    check()

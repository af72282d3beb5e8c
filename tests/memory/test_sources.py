"""Finding and reading the files to ingest."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from magray.errors import NotFoundError
from magray.hashing import content_hash
from magray.memory.ingest.sources import (
    Skipped,
    SkipReason,
    SourceFile,
    classify,
    decode,
    read_source,
    walk,
)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def run(paths: list[Path], root: Path, **kwargs: object) -> tuple[list[str], dict[str, str]]:
    """(uris of the files read, {uri: reason} of those skipped)."""
    files: list[str] = []
    skipped: dict[str, str] = {}
    for item in walk(paths, root=root, **kwargs):  # type: ignore[arg-type]
        if isinstance(item, SourceFile):
            files.append(item.uri)
        else:
            skipped[item.uri] = item.reason.value
    return files, skipped


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write(root / "README.md", "# Readme\n")
    write(root / "src" / "app.py", "def main():\n    pass\n")
    write(root / "src" / "z.txt", "notes\n")
    write(root / "docs" / "guide.md", "# Guide\n")
    return root


def test_source_file_fields(tree: Path) -> None:
    [item] = list(walk([tree / "src" / "app.py"], root=tree))
    assert isinstance(item, SourceFile)
    assert item.path == (tree / "src" / "app.py").resolve()
    assert item.uri == "src/app.py"
    assert item.text == "def main():\n    pass\n"
    assert item.content_hash == content_hash(item.text)
    assert (item.kind, item.language, item.size) == ("code", "python", 21)


def test_walk_is_sorted_and_independent_of_argument_order(tree: Path) -> None:
    files, _ = run([tree / "src", tree / "docs", tree / "README.md"], tree)
    again, _ = run([tree / "README.md", tree / "docs", tree / "src"], tree)
    assert files == again == ["README.md", "docs/guide.md", "src/app.py", "src/z.txt"]
    whole, _ = run([tree], tree)
    assert whole == ["README.md", "docs/guide.md", "src/app.py", "src/z.txt"]


def test_uri_outside_root_is_absolute(tree: Path, tmp_path: Path) -> None:
    other = write(tmp_path / "elsewhere" / "x.md", "x\n")
    files, _ = run([other], tree)
    assert files == [other.resolve().as_posix()]


def test_default_root_is_cwd(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree / "src")
    uris = [i.uri for i in walk([Path("app.py")])]
    assert uris == ["app.py"]


def test_nested_gitignore_and_negation(tree: Path) -> None:
    write(tree / ".gitignore", "*.log\nsecret/\n")
    write(tree / "a.log", "x")
    write(tree / "secret" / "key.txt", "k")
    write(tree / "notes" / ".gitignore", "*.md\n!keep.md\n")
    write(tree / "notes" / "drop.md", "d")
    write(tree / "notes" / "keep.md", "k")
    write(tree / "notes" / "deep" / "also.md", "d")
    write(tree / "notes" / "deep" / "x.log", "x")
    write(tree / "other" / "drop.md", "not ignored here")
    files, skipped = run([tree], tree)
    assert files == [
        "README.md",
        "docs/guide.md",
        "notes/keep.md",
        "other/drop.md",
        "src/app.py",
        "src/z.txt",
    ]
    assert skipped == {
        ".gitignore": "ignored",
        "a.log": "ignored",
        "secret": "ignored",
        "notes/.gitignore": "ignored",
        "notes/drop.md": "ignored",
        "notes/deep/also.md": "ignored",
        "notes/deep/x.log": "ignored",
    }


def test_deeper_gitignore_can_reinclude(tree: Path) -> None:
    write(tree / ".gitignore", "*.txt\n")
    write(tree / "sub" / ".gitignore", "!*.txt\n")
    write(tree / "sub" / "k.txt", "k")
    files, _ = run([tree], tree)
    assert "sub/k.txt" in files and "src/z.txt" not in files


def test_gitignore_above_an_explicit_folder_applies(tree: Path) -> None:
    write(tree / ".gitignore", "*.txt\n")
    files, skipped = run([tree / "src"], tree)
    assert files == ["src/app.py"]
    assert skipped == {"src/z.txt": "ignored"}


def test_explicit_file_ignores_gitignore(tree: Path) -> None:
    write(tree / ".gitignore", "*.txt\n")
    files, _ = run([tree / "src" / "z.txt"], tree)
    assert files == ["src/z.txt"]


def test_always_skipped_and_hidden(tree: Path) -> None:
    for name in ("node_modules", ".git", "__pycache__", ".venv", "build", "dist", ".tox"):
        write(tree / name / "f.js", "x")
    write(tree / ".env", "API_KEY=secret\n")
    write(tree / ".github" / "ci.yml", "on: push\n")
    files, skipped = run([tree], tree)
    assert files == ["README.md", "docs/guide.md", "src/app.py", "src/z.txt"]
    assert {"node_modules", ".git", "__pycache__", ".env", ".github"} <= set(skipped)
    assert set(skipped.values()) == {"ignored"}
    files, _ = run([tree], tree, include_hidden=True)
    assert ".env" in files and ".github/ci.yml" in files
    assert not any(f.startswith((".git/", "node_modules/", ".venv/")) for f in files)


def test_binary_by_nul_byte_and_by_extension(tree: Path) -> None:
    write(tree / "data.txt", b"abc\x00def")
    write(tree / "img.png", b"not really a png")
    write(tree / "model.onnx", b"x")
    _, skipped = run([tree], tree)
    assert skipped == {"data.txt": "binary", "img.png": "binary", "model.onnx": "binary"}
    [item] = list(walk([tree / "img.png"], root=tree))
    assert isinstance(item, Skipped) and item.reason is SkipReason.BINARY


def test_nul_byte_after_the_first_8_kib_is_binary(tree: Path) -> None:
    write(tree / "late.txt", b"text " * 2000 + b"\x00 and more")
    write(tree / "wide.txt", "\ufeffok\x00".encode("utf-16"))
    _, skipped = run([tree], tree)
    assert skipped == {"late.txt": "binary", "wide.txt": "binary"}


def test_invalid_gitignore_pattern_is_left_out_with_a_warning(
    tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tree / "src" / ".gitignore", "z.txt\n\\\n")
    files, skipped = run([tree], tree)
    assert "src/app.py" in files and skipped == {
        "src/.gitignore": "ignored",
        "src/z.txt": "ignored",
    }
    [warning] = [r.getMessage() for r in caplog.records]
    assert str(tree / "src" / ".gitignore") in warning and "line 2" in warning


def test_too_large_even_when_explicit(tree: Path) -> None:
    big = write(tree / "big.md", "x" * 101)
    write(tree / "ok.md", "x" * 100)
    _, skipped = run([tree], tree, max_bytes=100)
    assert skipped == {"big.md": "too large"}
    assert [i.reason for i in walk([big], root=tree, max_bytes=100)] == [SkipReason.TOO_LARGE]  # type: ignore[union-attr]


def test_non_utf8_file_is_skipped_but_a_stray_byte_is_tolerated(tree: Path) -> None:
    write(tree / "latin1.txt", "café crème brûlée\n".encode("latin-1"))
    write(tree / "stray.txt", b"(c) 2024 \xa9 Someone\n" + b"plain ascii text\n" * 10)
    _files, skipped = run([tree], tree)
    assert skipped == {"latin1.txt": "not utf-8 decodable"}
    [stray] = list(walk([tree / "stray.txt"], root=tree))
    assert isinstance(stray, SourceFile) and "\ufffd" in stray.text


def test_decode_boms_and_line_endings() -> None:
    assert decode(b"\xef\xbb\xbfhello\r\nworld") == "hello\r\nworld"
    assert decode("привет".encode("utf-16")) == "привет"
    assert decode(b"\x00\x01") is None


def test_symlink_loop_and_outside_link(tree: Path, tmp_path: Path) -> None:
    outside = write(tmp_path / "outside" / "private.md", "p")
    (tree / "docs" / "loop").symlink_to(tree, target_is_directory=True)
    (tree / "docs" / "out").symlink_to(outside.parent, target_is_directory=True)
    (tree / "src" / "out.md").symlink_to(outside)
    (tree / "src" / "self").symlink_to(tree / "src" / "self")
    (tree / "src" / "alias.py").symlink_to(tree / "src" / "app.py")
    files, skipped = run([tree], tree)
    assert files == ["README.md", "docs/guide.md", "src/app.py", "src/z.txt"]
    assert skipped == {
        "docs/out": "symlink outside roots",
        "src/out.md": "symlink outside roots",
        "src/self": "symlink loop",
    }


def test_broken_symlink_is_named_by_the_link(tree: Path, tmp_path: Path) -> None:
    (tree / "docs" / "gone.md").symlink_to(tmp_path / "deleted.md")
    (tree / "docs" / "inside.md").symlink_to(tree / "missing.md")
    (tree / "docs" / ".hidden.md").symlink_to(tree / "missing.md")
    (tree / "docs" / "a").symlink_to(tree / "docs" / "b")
    (tree / "docs" / "b").symlink_to(tree / "docs" / "a")
    files, skipped = run([tree], tree)
    assert files == ["README.md", "docs/guide.md", "src/app.py", "src/z.txt"]
    assert skipped == {
        "docs/.hidden.md": "ignored",
        "docs/a": "symlink loop",
        "docs/b": "symlink loop",
        "docs/gone.md": "broken symlink (its target does not exist)",
        "docs/inside.md": "broken symlink (its target does not exist)",
    }


def test_broken_symlink_named_explicitly_says_so(tree: Path, tmp_path: Path) -> None:
    link = tree / "gone.md"
    link.symlink_to(tmp_path / "deleted.md")
    with pytest.raises(NotFoundError, match=r"gone\.md is a broken symbolic link: its target "):
        walk([link], root=tree)
    loop = tree / "loop"
    loop.symlink_to(loop)
    with pytest.raises(NotFoundError, match="loops back on itself"):
        walk([loop], root=tree)


def test_explicit_symlinked_folder_is_followed(tree: Path, tmp_path: Path) -> None:
    outside = write(tmp_path / "outside" / "private.md", "p")
    (tree / "linked").symlink_to(outside.parent, target_is_directory=True)
    files, _ = run([tree / "linked"], tree)
    assert files == ["linked/private.md"]


def test_same_file_named_twice_is_read_once(tree: Path) -> None:
    files, _ = run([tree / "src", tree / "src" / "app.py", tree / "src" / ".." / "src"], tree)
    assert files == ["src/app.py", "src/z.txt"]


def test_missing_path_raises_before_walking(tree: Path) -> None:
    with pytest.raises(NotFoundError):
        walk([tree, tree / "nope"], root=tree)


def test_unreadable_file(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = write(tree / "locked.md", "x").resolve()
    real_open = Path.open

    def deny(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)
    _, skipped = run([tree], tree)
    assert skipped == {"locked.md": "unreadable"}


@pytest.mark.parametrize(
    ("name", "kind", "language"),
    [
        ("a.md", "markdown", None),
        ("A.MARKDOWN", "markdown", None),
        ("x.py", "code", "python"),
        ("x.tsx", "code", "typescript"),
        ("Makefile", "code", "make"),
        ("cfg.yaml", "code", "yaml"),
        ("notes.txt", "text", None),
        ("LICENSE", "text", None),
    ],
)
def test_classify(name: str, kind: str, language: str | None) -> None:
    assert classify(Path(name)) == (kind, language)


def test_read_source_of_a_fifo_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = read_source(fifo, uri="pipe")
    assert isinstance(result, Skipped) and result.reason is SkipReason.NOT_REGULAR

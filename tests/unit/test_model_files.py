import hashlib
import sys
import types
from pathlib import Path

import pytest

from ponder.errors import ModelError
from ponder.model_files import ChunkedModel, resolve_model


def fake_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parts: list[bytes],
                prefix: str = "fake_chunk_part") -> None:
    for i, data in enumerate(parts, start=1):
        path = tmp_path / f"part{i:02d}.bin"
        path.write_bytes(data)
        module = types.ModuleType(f"{prefix}{i}")
        module.get_part_path = lambda p=path: str(p)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, f"{prefix}{i}", module)


def spec(parts: list[bytes], sha: str | None = None, n: int | None = None) -> ChunkedModel:
    blob = b"".join(parts)
    return ChunkedModel("fake", "fake.gguf", "fake_chunk_part", n or len(parts), len(blob),
                        sha or hashlib.sha256(blob).hexdigest(), "fake-parts==1", "test")


def test_chunks_are_assembled_once_and_verified(tmp_path: Path, ponder_home: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    parts = [b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7]
    fake_chunks(tmp_path, monkeypatch, parts)
    seen: list[tuple[int, int]] = []
    path = spec(parts).ensure(lambda done, total: seen.append((done, total)))
    assert path == ponder_home / "models" / "fake.gguf"
    assert path.read_bytes() == b"".join(parts)
    assert seen[-1] == (161, 161)
    mtime = path.stat().st_mtime_ns
    assert spec(parts).ensure() == path and path.stat().st_mtime_ns == mtime
    assert not list(path.parent.glob("*.part"))


def test_missing_part_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = [b"a", b"b"]
    fake_chunks(tmp_path, monkeypatch, parts)
    with pytest.raises(ModelError, match="'fake-chunk-part3' is not installed"):
        spec(parts, n=3).ensure()


def test_hash_mismatch_fails_and_leaves_nothing(tmp_path: Path, ponder_home: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    parts = [b"a" * 10, b"b" * 10]
    fake_chunks(tmp_path, monkeypatch, parts)
    with pytest.raises(ModelError, match="sha256 of the assembled file"):
        spec(parts, sha="0" * 64).ensure()
    assert not (ponder_home / "models" / "fake.gguf").exists()
    assert not list((ponder_home / "models").glob("*"))


def test_missing_local_file_and_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        resolve_model(str(tmp_path / "nope.gguf"))
    with pytest.raises(ModelError, match="unknown model 'qwen-banana'"):
        resolve_model("qwen-banana")


def test_hub_repo_without_network_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="Hugging Face"):
        resolve_model("Qwen/Qwen2.5-0.5B-Instruct-GGUF")

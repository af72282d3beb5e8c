"""Where MAGRAY keeps things.

With ``MAGRAY_HOME`` set, everything (config, data, models, logs) lives under it.
Otherwise the platform's user directories are used. ``MAGRAY_MODELS_DIR`` moves
only the models, so several homes can share one installed copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "magray"

#: the file of each SQLite database of a home (in its data folder), by name; the one place
#: these names are written
DATABASE_FILES: dict[str, str] = {
    "memory": "memory.db",
    "tasks": "tasks.db",
    "llm": "llm.db",
    "conversations": "conversations.db",
    "audit": "audit.db",
    "embed_cache": "embed-cache.db",
    "audit_chain": "audit-chain.db",
    "server_keys": "server-keys.db",
}


@dataclass(frozen=True, slots=True)
class Paths:
    """The directories of one MAGRAY home."""

    config_dir: Path
    data_dir: Path
    models_dir: Path
    logs_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def keys_file(self) -> Path:
        return self.config_dir / "keys.toml"

    @property
    def memory_db(self) -> Path:
        return self.data_dir / DATABASE_FILES["memory"]

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def tasks_db(self) -> Path:
        return self.data_dir / DATABASE_FILES["tasks"]

    @property
    def llm_db(self) -> Path:
        """LLM usage log and circuit-breaker state."""
        return self.data_dir / DATABASE_FILES["llm"]

    @property
    def conversations_db(self) -> Path:
        return self.data_dir / DATABASE_FILES["conversations"]

    @property
    def audit_db(self) -> Path:
        return self.data_dir / DATABASE_FILES["audit"]

    @property
    def embed_cache_db(self) -> Path:
        return self.data_dir / DATABASE_FILES["embed_cache"]

    @property
    def audit_chain_db(self) -> Path:
        """The hash-chained audit log of server calls and tool decisions."""
        return self.data_dir / DATABASE_FILES["audit_chain"]

    @property
    def server_keys_db(self) -> Path:
        """The server's API keys (hashes only)."""
        return self.data_dir / DATABASE_FILES["server_keys"]

    def databases(self) -> dict[str, Path]:
        """Every SQLite database of this home, by name."""
        return {name: self.data_dir / file for name, file in DATABASE_FILES.items()}

    @property
    def log_file(self) -> Path:
        return self.logs_dir / "magray.log"

    def owns(self, path: Path) -> bool:
        """Whether writing ``path`` would overwrite this home's own files: anything in its
        data, models or logs folder (backups aside), or a settings file of its config folder."""
        try:
            target = path.expanduser().resolve()
        except (OSError, RuntimeError):
            return False
        folders = (self.data_dir, self.models_dir, self.logs_dir)
        resolved = [folder.expanduser().resolve() for folder in folders]
        if target.is_relative_to(resolved[0] / "backups"):
            return False
        if any(target.is_relative_to(folder) for folder in resolved):
            return True
        config = self.config_dir.expanduser().resolve()
        return target.parent == config and target.suffix == ".toml"


def _folder(variable: str, value: str) -> Path:
    """The folder an environment variable names (it may not exist yet), or a ConfigError
    when it is a file or a symlink loop."""
    from magray.errors import ConfigError

    try:
        folder = Path(value).expanduser().resolve()
        is_file = folder.exists() and not folder.is_dir()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python before 3.13)
        raise ConfigError(
            f"{variable}={value} cannot be resolved (a symlink loop?); point it at a folder."
        ) from None
    if is_file:
        raise ConfigError(f"{variable}={value} is a file, not a folder; point it at a folder.")
    return folder


def resolve_paths(env: os._Environ[str] | dict[str, str] | None = None) -> Paths:
    """Work out the directories from the environment."""
    env = os.environ if env is None else env
    home = env.get("MAGRAY_HOME")
    if home:
        root = _folder("MAGRAY_HOME", home)
        paths = Paths(
            config_dir=root,
            data_dir=root / "data",
            models_dir=root / "models",
            logs_dir=root / "logs",
        )
    else:
        import platformdirs

        paths = Paths(
            config_dir=Path(platformdirs.user_config_dir(APP_NAME)),
            data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
            models_dir=Path(platformdirs.user_data_dir(APP_NAME)) / "models",
            logs_dir=Path(platformdirs.user_log_dir(APP_NAME)),
        )
    models = env.get("MAGRAY_MODELS_DIR")
    if models:
        paths = Paths(
            config_dir=paths.config_dir,
            data_dir=paths.data_dir,
            models_dir=_folder("MAGRAY_MODELS_DIR", models),
            logs_dir=paths.logs_dir,
        )
    return paths

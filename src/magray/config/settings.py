"""Loading and merging: defaults < config.toml < MAGRAY_* environment < flags.

``Settings.sources`` tells where each value came from, for ``magray config show``; code reads
the typed sections (``settings.memory.ttl_interact_hours``, :mod:`magray.config.sections`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.config.options import BY_KEY, OPTIONS, env_var, unknown_setting
from magray.config.values import coerce
from magray.errors import ConfigError
from magray.paths import Paths, resolve_paths

if TYPE_CHECKING:
    from magray.config.sections import (
        EmbedSettings,
        MCPSettings,
        MemorySettings,
        SearchSettings,
        Section,
        ServerSettings,
        ToolsSettings,
        WebSettings,
    )


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, key + "."))
        else:
            flat[key] = value
    return flat


def read_config_file(path: Path) -> dict[str, Any]:
    """Read ``config.toml`` as flat dotted keys; unknown keys of known sections are errors.

    Sections owned by other parts of MAGRAY (``[llm]``, read by :mod:`magray.llm.config`)
    are returned as they are.
    """
    from magray.fileio import read_toml

    flat = _flatten(read_toml(path))
    known_sections = {k.split(".")[0] for k in BY_KEY}
    for key in flat:
        if key.split(".")[0] in known_sections and key not in BY_KEY:
            raise ConfigError(f"{path}: {unknown_setting(key)}")
    return flat


@dataclass(frozen=True, slots=True)
class Settings:
    """The merged settings of one run.

    Code reads typed sections — ``settings.memory.ttl_interact_hours``,
    ``settings.tools.timeout`` (see :mod:`magray.config.sections`); ``settings[key]`` and the
    ``get_*`` helpers read one value by its dotted key (``magray config get``).
    """

    paths: Paths
    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)
    _sections: dict[str, Section] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def section(self, name: str) -> Section:
        """The typed section ``name`` (made once per settings object)."""
        made = self._sections.get(name)
        if made is None:
            from magray.config.sections import SECTIONS

            made = self._sections[name] = SECTIONS[name].of(self.values)
        return made

    @property
    def embed(self) -> EmbedSettings:
        return self.section("embed")  # type: ignore[return-value]

    @property
    def memory(self) -> MemorySettings:
        return self.section("memory")  # type: ignore[return-value]

    @property
    def search(self) -> SearchSettings:
        return self.section("search")  # type: ignore[return-value]

    @property
    def web(self) -> WebSettings:
        return self.section("web")  # type: ignore[return-value]

    @property
    def tools(self) -> ToolsSettings:
        return self.section("tools")  # type: ignore[return-value]

    @property
    def mcp(self) -> MCPSettings:
        return self.section("mcp")  # type: ignore[return-value]

    @property
    def server(self) -> ServerSettings:
        return self.section("server")  # type: ignore[return-value]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get_str(self, key: str) -> str:
        value = self.values[key]
        assert isinstance(value, str)
        return value

    def get_int(self, key: str) -> int:
        value = self.values[key]
        assert isinstance(value, int)
        return value

    def get_float(self, key: str) -> float:
        value = self.values[key]
        assert isinstance(value, float)
        return value

    def get_bool(self, key: str) -> bool:
        value = self.values[key]
        assert isinstance(value, bool)
        return value

    def with_overrides(self, overrides: Mapping[str, Any], source: str = "flag") -> Settings:
        """A copy with ``overrides`` (None values are ignored) applied on top."""
        values = dict(self.values)
        sources = dict(self.sources)
        for key, raw in overrides.items():
            if raw is None:
                continue
            option = BY_KEY.get(key)
            if option is None:
                raise ConfigError(unknown_setting(key))
            values[key] = coerce(option, raw, source)
            sources[key] = source
        return Settings(paths=self.paths, values=values, sources=sources)


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    paths_factory: Callable[[], Paths] = resolve_paths,
) -> Settings:
    """Load settings: defaults < config.toml < environment < ``overrides`` (flags)."""
    env = os.environ if env is None else env
    paths = paths_factory()
    values: dict[str, Any] = {o.key: o.default for o in OPTIONS}
    sources: dict[str, str] = {o.key: "default" for o in OPTIONS}
    for key, raw in read_config_file(paths.config_file).items():
        option = BY_KEY.get(key)
        if option is None:
            continue  # sections owned by other parts of MAGRAY (e.g. [llm])
        values[key] = coerce(option, raw, str(paths.config_file))
        sources[key] = str(paths.config_file)
    for option in OPTIONS:
        name = env_var(option.key)
        if name in env:
            values[option.key] = coerce(option, env[name], name)
            sources[option.key] = name
    settings = Settings(paths=paths, values=values, sources=sources)
    return settings.with_overrides(overrides or {})

"""Settings: one frozen object, merged from defaults < config.toml < MAGRAY_* env < flags.

The package, by what each module owns:

- :mod:`~magray.config.options` — the options table (key, type, default, range, help);
- :mod:`~magray.config.values` — the one validator of a value or a TOML table, used for
  ``config.toml``, the ``[llm]`` section, ``mcp.toml`` and ``policy.toml`` alike;
- :mod:`~magray.config.settings` — loading and merging into :class:`Settings`;
- :mod:`~magray.config.sections` — the typed sections (``settings.memory``, …);
- :mod:`~magray.config.write` — ``config set`` / ``config unset``.
"""

from __future__ import annotations

from magray.config.options import OPTIONS, Option, env_var, option, shown, unknown_setting
from magray.config.settings import Settings, load_settings, read_config_file
from magray.config.values import coerce, read_table
from magray.config.write import unset_setting, write_setting

__all__ = [
    "OPTIONS",
    "Option",
    "Settings",
    "coerce",
    "env_var",
    "load_settings",
    "option",
    "read_config_file",
    "read_table",
    "shown",
    "unknown_setting",
    "unset_setting",
    "write_setting",
]

"""ONNX Runtime sessions: provider choice (CUDA when asked and present, else CPU), threads,
and a single logged fallback to CPU when a provider fails to load or fails at run time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from magray.errors import ModelError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
log = logging.getLogger("magray")

SessionFactory = Callable[[str, Any, list[str]], Any]


def available_providers() -> list[str]:
    """Providers this onnxruntime build offers (``CUDAExecutionProvider`` needs onnxruntime-gpu)."""
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def choose_providers(device: str) -> list[str]:
    """Providers to try, best first, for ``embed.device`` (auto | cpu | cuda)."""
    if device == "cpu":
        return [CPU]
    if device == "cuda" or (device == "auto" and CUDA in available_providers()):
        return [CUDA, CPU]
    return [CPU]


def session_options(threads: int) -> Any:
    """ORT options: ``threads`` intra-op threads (0 = all cores, not spinning when idle),
    full graph optimisation."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(0, threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 4  # the core never prints: failures surface as ModelError
    # Idle intra-op threads sleep instead of spinning: on shared cores (a server answering
    # many searches, other processes) spinning burned more CPU than the model itself.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _ort_session(path: str, options: Any, providers: list[str]) -> Any:
    import onnxruntime

    onnxruntime.set_default_logger_severity(4)
    return onnxruntime.InferenceSession(path, sess_options=options, providers=providers)


class OnnxSession:
    """One model's inference session that degrades to CPU instead of failing."""

    def __init__(
        self,
        path: Path,
        *,
        device: str = "auto",
        threads: int = 0,
        factory: SessionFactory | None = None,
    ) -> None:
        self.path = path
        self.threads = threads
        self._factory = factory or _ort_session
        self._session = self._open(choose_providers(device))
        self.input_names: tuple[str, ...] = tuple(i.name for i in self._session.get_inputs())
        self.output_names: tuple[str, ...] = tuple(o.name for o in self._session.get_outputs())

    @property
    def provider(self) -> str:
        """The provider that runs this session now."""
        providers = self._session.get_providers()
        return str(providers[0]) if providers else CPU

    def _load(self, options: Any, providers: list[str]) -> Any:
        """The session, from the model's mapped copy when there is one (see ``mapped``)."""
        if self._factory is _ort_session:
            from magray.embed.mapped import mapped_model

            source = mapped_model(self.path)
            if source != self.path:
                try:
                    return self._factory(str(source), options, providers)
                except Exception as exc:
                    log.debug("%s did not load (%s); loading %s", source, exc, self.path)
        return self._factory(str(self.path), options, providers)

    def _open(self, providers: list[str]) -> Any:
        options = session_options(self.threads)
        try:
            session = self._load(options, providers)
        except Exception as exc:
            if providers == [CPU]:
                name = self.path.parent.name
                raise ModelError(
                    f"{self.path} cannot be loaded by ONNX Runtime ({exc}); reinstall it with"
                    f" `magray models install {name}` (or `magray models add {name} PATH`"
                    " for a model of your own)."
                ) from None
            log.warning(
                "%s failed to load (%s); running %s on CPU.", providers[0], exc, self.path.name
            )
            return self._open([CPU])
        active = session.get_providers()
        if providers[0] != CPU and (not active or active[0] != providers[0]):
            log.warning("%s is not available; running %s on CPU.", providers[0], self.path.name)
        return session

    def run(self, feed: Mapping[str, Any]) -> list[Any]:
        """Run the graph; a non-CPU provider that fails is replaced by CPU once."""
        try:
            return list(self._session.run(None, dict(feed)))
        except Exception as exc:
            if self.provider == CPU:
                raise ModelError(f"running {self.path} failed ({exc}).") from None
            log.warning("%s failed at run time (%s); running on CPU.", self.provider, exc)
            self._session = self._open([CPU])
            return list(self._session.run(None, dict(feed)))

"""The pydantic schema of the ``[llm]`` table, imported only when there is one to check."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ProviderModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str  # a registered provider type: built-in or from a plugin (llm/registry.py)
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_retries: int = Field(default=2, ge=0, le=10)
    context_window: int | None = Field(default=None, gt=0)
    price_per_1k_prompt: float | None = Field(default=None, ge=0)
    price_per_1k_completion: float | None = Field(default=None, ge=0)
    model_path: str | None = None
    threads: int = Field(default=0, ge=0)
    n_ctx: int | None = Field(default=None, gt=0)


class LLMModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: str | None = None
    fallback: list[str] = Field(default_factory=list)
    daily_token_budget: int = Field(default=0, ge=0)
    daily_cost_budget_usd: float = Field(default=0.0, ge=0)
    providers: dict[str, ProviderModel] = Field(default_factory=dict)

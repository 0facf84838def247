"""GET /v1/models, and what a request's ``model`` names.

A model name is the backend's model id, or a strategy name and the model id
joined by one ``/``::

    qwen2.5-coder-0.5b                    the server's default strategy
    self-consistency/qwen2.5-coder-0.5b   self-consistency

The part before the first ``/`` must be a registry name, exactly; the rest
must be the served model. The served id is tried whole first, so a model id
that contains ``/`` itself (``Qwen/Qwen2.5-7B-Instruct`` behind the openai
backend) still resolves. Anything else is a 404, as in OpenAI and vLLM.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from ponder.engine import Engine
from ponder.server.deps import engine_of, require_api_key
from ponder.server.errors import ApiError
from ponder.server.protocol import ModelCard, ModelList, now

SEPARATOR = "/"

router = APIRouter(dependencies=[Depends(require_api_key)])


def resolve_model(name: str | None, engine: Engine) -> str | None:
    """The strategy a model name selects (None: no prefix). 404 for unknown names."""
    served = engine.backend.model
    if not name or name == served:
        return None
    prefix, sep, rest = name.partition(SEPARATOR)
    if sep and rest == served and prefix in engine.registry:
        return prefix
    hint = f"; unknown strategy {prefix!r}" if sep and rest == served else ""
    raise ApiError(f"the model {name!r} does not exist{hint}: this server serves "
                   f"{served!r} and '<strategy>{SEPARATOR}{served}' (see GET /v1/models)",
                   status=404, param="model", code="model_not_found")


def strategy_model(strategy: str, engine: Engine) -> str:
    return f"{strategy}{SEPARATOR}{engine.backend.model}"


@router.get("/v1/models")
async def list_models(request: Request) -> ModelList:
    engine = engine_of(request)
    created = now()
    cards = [ModelCard(id=engine.backend.model, created=created, root=engine.backend.model,
                       ponder={"backend": engine.backend.kind})]
    for info in engine.registry:
        cards.append(ModelCard(
            id=strategy_model(info.name, engine), created=created, root=engine.backend.model,
            ponder={"strategy": info.name, "summary": info.cls.summary, "source": info.source,
                    "params": {k: _jsonable(v) for k, v in info.params().items()}}))
    return ModelList(data=cards)


def _jsonable(value: object) -> object:
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)

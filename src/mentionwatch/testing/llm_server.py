"""An OpenAI-compatible chat-completions API on the loopback web, for the LLM analyzer.

``mount(web)`` adds it to a running :class:`LoopbackWeb` under ``/openai`` (it is no
source, so it is not discovered with the platforms). It answers ``POST
/openai/v1/chat/completions`` in OpenAI's response shape (what `llm`'s OpenAI plugin reads)
and labels the mentions of the request with a few keyword rules, so tests can check what
reached the model and what came back, without any real API. Faults are the web's own
(``web.fail("/openai/", 429, headers={"Retry-After": "0"})`` is a rate limit);
``garbage = True`` answers text that is not the JSON asked for.

``write_llm_config(folder, url)`` writes the `extra-openai-models.yaml` that points an `llm`
model id (``mw-loopback``) at it; set ``LLM_USER_PATH`` to that folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mentionwatch.testing.server import LoopbackWeb, PlatformBase, Request, Response, json_response

MODEL_ID = "mw-loopback"


def label(item: dict[str, Any]) -> dict[str, Any]:
    """The loopback model's answer for one mention: keyword rules, deterministic."""
    text = (item.get("text") or "").lower()
    about = (item.get("about") or "").lower()
    negative = any(w in text for w in ("broke", "down", "crash", "annoying", "hate", "worst"))
    positive = not negative and any(w in text for w in ("love", "great", "thanks", "magic"))
    intents = []
    if "?" in text:
        intents.append("question")
    if negative:
        intents.append("complaint")
    if positive:
        intents.append("praise")
    if "would love" in text or "please add" in text:
        intents.append("request")
    about_words = {w for w in about.split() if len(w) > 3}
    relevant = not about_words or any(w in text for w in about_words)
    return {
        "id": item.get("id"),
        "sentiment": "negative" if negative else "positive" if positive else "neutral",
        "polarity": -0.8 if negative else 0.8 if positive else 0.0,
        "intents": intents,
        "relevance": 0.9 if relevant else 0.1,
    }


class ModelAPI(PlatformBase):
    name = "openai"

    def __init__(self, web: LoopbackWeb) -> None:
        super().__init__(web)
        self.garbage = False

    @property
    def url(self) -> str:
        """The API base an OpenAI client is given (ends in /v1)."""
        return self.web.base_url(self.name) + "/v1"

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the chat-completion requests received, in order."""
        return [json.loads(r.body or b"{}") for r in self.web.seen(f"/{self.name}/")
                if r.method == "POST"]  # fmt: skip

    def mentions_seen(self) -> list[dict[str, Any]]:
        """Every mention item sent to the model, in order (failed requests included)."""
        items = []
        for body in self.bodies():
            for message in body.get("messages", []):
                if message.get("role") == "user" and isinstance(message.get("content"), str):
                    items.extend(json.loads(message["content"]))
        return items

    def handle(self, request: Request) -> Response | None:
        if request.method != "POST" or not request.path.rstrip("/").endswith("/chat/completions"):
            return None
        body = request.json() or {}
        user = [m for m in body.get("messages", []) if m.get("role") == "user"]
        items = json.loads(user[-1]["content"]) if user else []
        content = "sorry, I cannot help" if self.garbage else json.dumps(
            {"results": [label(item) for item in items]}
        )  # fmt: skip
        return json_response({
            "id": f"chatcmpl-{len(self.bodies())}",
            "object": "chat.completion",
            "created": 1700000000,
            "model": body.get("model", MODEL_ID),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 100 * len(items), "completion_tokens": 20 * len(items),
                      "total_tokens": 120 * len(items)},
        })  # fmt: skip


def mount(web: LoopbackWeb) -> ModelAPI:
    api = ModelAPI(web)
    web.platforms[api.name] = api
    return api


def write_llm_config(folder: Path, url: str) -> Path:
    """An `llm` user folder whose extra-openai-models.yaml names the loopback model."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "extra-openai-models.yaml"
    path.write_text(
        f'- model_id: {MODEL_ID}\n  model_name: {MODEL_ID}\n  api_base: "{url}"\n'
        "  supports_schema: true\n",
        encoding="utf-8",
    )
    return path

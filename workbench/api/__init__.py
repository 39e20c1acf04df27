"""The OpenAI-compatible HTTP API: `GET /v1/models`, `POST /v1/chat/completions`, `POST /v1/completions`.

    from workbench.api.routes import api_routes
    routes = api_routes(settings, router, ready=lambda: True)       # Starlette routes, mounted on any app

The Gradio app mounts them beside `GET /status` (workbench/ui/demo.py) and `workbench serve` serves them alone
(workbench/cli/serve.py). Requests go through the app's Router: the same llama.cpp slots as the chat, batched
with it. Modules: `params` (the accepted parameters, declared once, and their checks), `errors` (OpenAI's error
shape), `models` (model ids), `chat` and `completions` (the two endpoints), `routes` (who is asking, bodies,
streaming). No gradio import; nothing happens at import time. docs/api.md shows it in use.
"""

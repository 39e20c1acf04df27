"""Workbench's Gradio app: the Hugging Face Spaces entry point.

`demo` is built at import (no model is loaded; that happens on first use), and `python app.py`
launches it on 127.0.0.1:7860, loading the model in the background while the server starts (the page and
`GET /status` say when it is ready).
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override where it listens (a Space sets 0.0.0.0, and then admin
actions are closed unless WORKBENCH_ADMIN_TOKEN is set; see workbench/access.py). Settings come from
WORKBENCH_* variables (see workbench/config.py); WORKBENCH_MODEL picks a bigger model on a GPU Space.
"""

from workbench.ui.demo import build_demo, serve

demo = build_demo()

if __name__ == "__main__":
    serve(demo)

"""Workbench's Gradio app: the Hugging Face Spaces entry point.

`demo` is built at import (no model is loaded; that happens on first use), and `python app.py`
launches it on 127.0.0.1:7860, loading the model in the background while the server starts (the page and
`GET /status` say when it is ready).
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override where it listens (a Space sets 0.0.0.0); admin actions without
a token are open only to requests that really come from this machine (see workbench/access.py), and
`workbench.ui.guard` refuses unknown Host names, oversized bodies and uploads from anyone but the admin.
Settings come from WORKBENCH_* variables (see workbench/config.py); WORKBENCH_MODEL picks a bigger model on a GPU
Space.
With WORKBENCH_SYNC_DATASET=user/name and HF_TOKEN, the store is read back from that dataset before the app
listens and pushed to it every few minutes (workbench/store/sync.py), so votes survive a Space's restart.
"""

from workbench.store import sync
from workbench.ui.demo import build_demo, serve

demo = build_demo()

if __name__ == "__main__":
    sync.start(demo.workbench_context.settings)  # pushes the store to a dataset, when WORKBENCH_SYNC_DATASET is set
    serve(demo)

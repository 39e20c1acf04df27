"""Workbench's Gradio app: the Hugging Face Spaces entry point.

`demo` is built at import (no model is loaded; that happens on first use), and `python app.py`
launches it on 127.0.0.1:7860, loading the model in the background while the server starts.
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override where it listens (a Space sets 0.0.0.0); admin actions without
a token are open only to requests that really come from this machine (see workbench/access.py), and
`workbench.ui.guard` refuses unknown Host names, oversized bodies and uploads from anyone but the admin.
Settings come from WORKBENCH_* variables (see workbench/config.py); WORKBENCH_MODEL picks a bigger model on a GPU
Space.
With WORKBENCH_SYNC_DATASET=user/name and HF_TOKEN, the store is read back from that dataset before the app
listens and pushed to it every few minutes (workbench/store/sync.py), so votes survive a Space's restart.
"""

import os

from workbench.store import sync
from workbench.ui.demo import build_demo, serve

demo = build_demo()

if __name__ == "__main__":
    demo.workbench_context.warm_up()
    scheduler = sync.start(demo.workbench_context.settings)  # None unless WORKBENCH_SYNC_DATASET and HF_TOKEN are set
    serve(demo, port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))

"""Workbench's Gradio app: the Hugging Face Spaces entry point.

`demo` is built at import (no model is loaded; that happens on first use), and `python app.py`
launches it on 127.0.0.1:7860, loading the model in the background while the server starts.
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override where it listens (a Space sets 0.0.0.0, and then admin
actions are closed unless WORKBENCH_ADMIN_TOKEN is set; see workbench/access.py). Settings come from
WORKBENCH_* variables (see workbench/config.py); WORKBENCH_MODEL picks a bigger model on a GPU Space.
With WORKBENCH_SYNC_DATASET=user/name and HF_TOKEN, the store is read back from that dataset before the app
listens and pushed to it every few minutes (workbench/store/sync.py), so votes survive a Space's restart.
"""

import os

from workbench.store import sync
from workbench.ui.demo import build_demo, launch_options

demo = build_demo()

if __name__ == "__main__":
    demo.workbench_context.warm_up()
    settings = demo.workbench_context.settings
    scheduler = sync.start(settings)  # None unless WORKBENCH_SYNC_DATASET and HF_TOKEN are set
    demo.queue(default_concurrency_limit=1, max_size=settings.queue_size).launch(
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), **launch_options(settings)
    )

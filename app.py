"""Workbench's Gradio app: the Hugging Face Spaces entry point.

`demo` is built at import (no model is loaded; that happens on first use), and `python app.py`
launches it on 0.0.0.0:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override), loading the model in
the background while the server starts. Settings come from WORKBENCH_* variables (see
workbench/config.py); WORKBENCH_MODEL picks a bigger model on a GPU Space.
"""

import os

from workbench.ui.demo import build_demo

demo = build_demo()

if __name__ == "__main__":
    demo.workbench_context.warm_up()
    demo.queue(default_concurrency_limit=1).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
    )

"""Test setup shared by every test: a hermetic, offline environment and the fixture plugins.

The environment is set before gradio/streamlit/transformers are imported, and servers started by the
tests inherit it: no telemetry, no hub, no proxy for loopback.
"""

import os

os.environ.update(
    {
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        "STREAMLIT_SERVER_HEADLESS": "true",
        "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "TOKENIZERS_PARALLELISM": "false",
    }
)
for _var in [v for v in os.environ if v.startswith("WORKBENCH_")]:
    del os.environ[_var]  # a developer's own settings must not leak into the tests

pytest_plugins = [
    "tests.fixtures.models",
    "tests.fixtures.servers",
    "tests.fixtures.postgres",
    "tests.fixtures.finetune",
    "tests.fixtures.dashboard",
    "tests.fixtures.remote",
]

"""The Gradio app: its tabs, and the adapters that connect them to the core's one gate.

Modules: `demo` (build_demo: the Gradio app), `chat`, `finetune` (+ `finetune_actions`), `arena`, `leaderboard`
(the tabs), `context` (AppContext: what the tabs share), `fields` (each input's declaration read from its
component) and `guard` (what the HTTP server refuses, and the queue's door). What the Streamlit pages share with
the app lives below this package: `workbench.gate` (who may do what) and `workbench.views` (figures, markup).

Only this package imports gradio; importing `workbench.ui` itself stays light.

    from workbench.ui.demo import build_demo
"""

"""User-interface code: the Gradio app's tabs, and the figures and markup that both UIs share.

Modules: `demo` (build_demo: the Gradio app), `chat`, `finetune` (+ `finetune_actions`), `arena` (the tabs),
`context` (AppContext: what the tabs share); `plots` (plotly figures) and `markup` (safe Markdown, vote
receipts), which the Streamlit pages use too and which import neither gradio nor torch.

Only this package imports gradio, and only in the Gradio modules: importing `workbench.ui` itself, `plots`
or `markup` stays light, so the dashboard starts fast.

    from workbench.ui.demo import build_demo
"""

"""What both UIs show, drawn without either: plotly figures (`plots`), safe Markdown and vote receipts (`markup`),
and a reply's tokens coloured by probability (`tokenview`). Imports neither gradio, streamlit nor torch, so the
dashboard starts fast.
"""

"""One gate for every request, in both UIs: who is asking, what they may send, what they may do, what they see.

A newcomer reads this package to know what any visitor may do:

- `visitor.py`   who sent a request (`Visitor`: address key, owner or not, sizes, voter id), made the same way
                 from a Gradio request, a Streamlit run or an HTTP API call;
- `fields.py`    each event's inputs declared once (type, bounds, size): the declaration builds the component and
                 checks the value before anything else runs;
- `sizes.py`     the largest request a visitor or the owner may send (chat, history, reply to read);
- `limits.py`    how often a visitor may generate or vote, keyed by address everywhere;
- `checkpoints.py` which checkpoints a visitor may choose;
- `sentence.py`  the one funnel every error passes before a visitor or a dashboard user reads it (linear time,
                 capped, secrets, URLs and server paths hidden).

Pure Python: no Gradio, no Streamlit, no torch. The Gradio tabs (`workbench.ui`) and the Streamlit pages
(`pages/`) are thin adapters over it.
"""

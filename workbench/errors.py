"""The one exception type a user should ever see from Workbench.

Raise `WorkbenchError("one clear sentence")` for bad input or an unusable resource; every entry point
(Gradio, Streamlit, CLI) shows its message as is, without a traceback. Anything else is a bug.
"""


class WorkbenchError(Exception):
    """A problem the user can fix, described in one sentence."""

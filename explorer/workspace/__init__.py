"""The backend the app drives; nothing here imports gradio.

`inputs` checks what the user types, `uploads` unpacks uploaded zips, `extractors` loads the chosen model,
`workspace` holds a dataset + extractor and derives embeddings, metrics, pictures and projections from them
(`tables`, `pictures`, `compare`, `export` and `progress` serve it), and `session` gives each browser session
copy-on-write access to the shared default workspace. The names below are the package's entry points; the
rest is imported from the module that defines it.
"""

from explorer.workspace.extractors import DEFAULT_MODEL
from explorer.workspace.session import WorkspaceSession
from explorer.workspace.workspace import DEFAULT_DATA, Workspace

__all__ = ["DEFAULT_DATA", "DEFAULT_MODEL", "Workspace", "WorkspaceSession"]

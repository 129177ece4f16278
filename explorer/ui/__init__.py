"""The Gradio layer: wiring of components to `explorer.workspace`; no logic of its own."""

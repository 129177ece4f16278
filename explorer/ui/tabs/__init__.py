"""One module per tab of the app, named after the tab: its components (built by `build_<tab>_tab`) and the
module-level handlers of its buttons, each a thin call into the session's workspace."""

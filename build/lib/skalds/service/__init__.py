"""The application layer: what the REST API, the YAML reconciler and the node agent do with the
ports. It sits between ``core`` (pure) and the components that drive it, so the controller and
the reloader share it without importing each other."""

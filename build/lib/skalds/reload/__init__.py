"""Worker pool YAML: parsing, validation, and hot reload of declared tasks."""

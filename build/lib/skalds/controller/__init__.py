"""The System Controller: REST API, dispatcher and monitor."""

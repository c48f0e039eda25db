"""The domain: task model, lifecycle, events, dispatch policies. No I/O lives here."""

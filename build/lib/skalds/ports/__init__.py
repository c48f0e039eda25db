"""The three ports the core talks through: event bus, task store, live state."""

"""The Task Worker SDK and the runtime that hosts one worker in its own process."""

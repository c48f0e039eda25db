"""The node agent: supervises one worker process per task and reports for them."""

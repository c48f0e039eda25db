"""The benchmark mode: ``python -m skalds +mode=bench`` measures Skalds doing its real job."""

"""What a run of the analyze-library flow does besides wiring: batches, accounting, summary."""
